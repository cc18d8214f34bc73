"""`fix` on Ray Data gives the local run's output, record for record, detecting each image once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

ray = pytest.importorskip("ray")
EXAMPLES = ROOT / "halluguard" / "examples"


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def answers(tmp_path) -> Path:
    """The example set (real photos), its records repeated, plus bad records, in a folder of two shards."""
    shutil.copytree(EXAMPLES / "images", tmp_path / "images")
    good = (EXAMPLES / "answers.jsonl").read_text().splitlines()
    bad = ['{"id": "broken", "answer": ', json.dumps({"id": "noimg", "answer": "A dog.", "image": "images/nope.jpg"}),
           json.dumps({"id": "notext", "image": "images/dog.jpg"})]
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.jsonl").write_text("\n".join(good + bad[:2]) + "\n")
    (shards / "b.jsonl").write_text("\n".join(bad[2:] + good[::-1]) + "\n")
    for shard in shards.iterdir():  # image paths relative to each shard's folder
        shard.write_text(shard.read_text().replace('"images/', '"../images/'))
    return shards


def _local(shards: Path, out: Path, detector: str, options: dict) -> None:
    from halluguard.pipeline import fix

    out.mkdir()
    for shard in sorted(shards.glob("*.jsonl")):
        fix(shard, out / shard.name, detector=detector, options=options)


def _read(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes().replace(str(folder).encode(), b"") for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("detector", ["annotations", "person"])
def test_ray_output_equals_local_output_and_detects_each_image_once(cluster, answers, tmp_path, detector):
    from halluguard.integrations.ray import fix_files

    spec = f"annotations:{EXAMPLES / 'labels.json'}" if detector == "annotations" else "person"
    options = {"detector_labels": "coco"} if detector == "annotations" else {"device": "cpu"}
    local, remote = tmp_path / "local", tmp_path / "ray"
    _local(answers, local, spec, options)
    stats: dict = {}
    summary = fix_files(answers, remote, detector=spec, options=options, concurrency=2, stats=stats)
    assert _read(remote) == _read(local)
    assert sorted(p.name for p in remote.iterdir()) == ["a.errors.jsonl", "a.jsonl", "b.errors.jsonl", "b.jsonl"]
    lines = sum(1 for shard in answers.iterdir() for line in shard.read_text().splitlines() if line.strip())
    assert summary.records == lines == summary.written + summary.errors and summary.errors == 3
    distinct_images = {p.read_bytes() for p in (tmp_path / "images").iterdir()}
    assert stats["detector_calls"] == stats["unique_images"] == len(distinct_images)


def test_ray_cli_folder_in_folder_out(answers, tmp_path):
    out = tmp_path / "fixed"
    result = run_cli("fix", str(answers), "-o", str(out), "--engine", "ray",
                     "--detector", f"annotations:{EXAMPLES / 'labels.json'}", "--json", "-")
    assert result.returncode == 1, result.stderr  # the bad records failed, the rest are written
    summary = json.loads(result.stdout)
    assert summary["errors"] == 3 and (out / "a.jsonl").exists() and (out / "b.errors.jsonl").exists()


def test_unreachable_ray_address_fails_fast_with_a_clear_message(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"answer": "a"}\n')
    result = run_cli("fix", str(source), "--engine", "ray", "--ray-address", "127.0.0.1:1", "-d", "none", timeout=60)
    assert result.returncode == 2
    assert "cannot reach a Ray cluster at '127.0.0.1:1'" in result.stderr and "ray start --head" in result.stderr


@pytest.mark.parametrize("metric", ["chair", "faithfulness"])
def test_ray_eval_equals_local_eval(cluster, tmp_path, metric, coco500):
    from halluguard.metrics import evaluate

    run = tmp_path / "run.jsonl"
    lines = (coco500 / "llava15_greedy.jsonl").read_text().splitlines()[:120]
    if metric == "faithfulness":  # claims as `halluguard fix` writes them
        lines = [json.dumps({**json.loads(line), "claims": [
            {"kind": "object", "label": "dog", "verdict": ("supported", "contradicted", "unverifiable")[i % 3]}]})
            for i, line in enumerate(lines)]
    run.write_text("\n".join(lines[:60] + ["{broken", ""] + lines[60:]) + "\n")
    annotations = None if metric == "faithfulness" else coco500 / "gt_objects.json"
    local = evaluate(run, annotations, metric=metric).to_json()
    remote = evaluate(run, annotations, metric=metric, engine="ray").to_json()
    assert remote == local
    assert local["runs"][0]["errors"][0]["line"] == 61


def test_ray_eval_pope_equals_local(cluster, tmp_path):
    from halluguard.metrics import evaluate

    questions = tmp_path / "coco_pope_random.json"
    answers = tmp_path / "answers.jsonl"
    qs = [{"question_id": i, "image": f"{i % 7}.jpg", "text": "Is there a dog in the image?",
           "label": ("yes", "no")[i % 2]} for i in range(1, 41)]
    questions.write_text("\n".join(json.dumps(q) for q in qs) + "\n")
    answers.write_text("\n".join(json.dumps({"question_id": q["question_id"], "answer": ("Yes.", "No, there is not.")[
        (q["question_id"] // 3) % 2]}) for q in qs) + "\n")
    local = evaluate(answers, questions, metric="pope").to_json()
    assert evaluate(answers, questions, metric="pope", engine="ray").to_json() == local
