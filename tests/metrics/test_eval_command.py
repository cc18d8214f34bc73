"""`halluguard eval`: JSON keys, comparisons, the plot, exit codes, bad lines (through typer's CliRunner)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from halluguard.metrics import evaluate
from halluguard.metrics.cli import eval_command

CHAIR_KEYS = {"chair_s", "chair_i", "recall", "n", "avg_words", "chair_s_ci", "chair_i_ci", "recall_ci"}
POPE_KEYS = {"accuracy", "precision", "recall", "f1", "yes_ratio", "n"}


@pytest.fixture
def invoke():
    app = typer.Typer(add_completion=False)
    app.command()(eval_command)
    app.command("other")(
        lambda: None
    )  # two commands, so "eval_command" is invoked by name as in the main app
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["eval-command", *map(str, args)])

    return run


def _jsonl(path, records, extra_lines=()):
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def chair_files(tmp_path):
    gt = {"1": ["dog", "person"], "2": ["cat", "couch"], "3": ["car"], "4": ["pizza", "dining table"]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    before = [
        {"image_id": 1, "answer": "A man and his dog next to a bench.", "corrected": "A man and his dog."},
        {"image_id": 2, "answer": "A cat on a sofa with a remote.", "corrected": "A cat on a sofa."},
        {"image_id": 3, "answer": "A red car and a truck.", "corrected": "A red car."},
        {"image_id": 4, "answer": "A pizza on a table with a fork.", "corrected": "A pizza on a table."},
    ]
    after = [{"image_id": r["image_id"], "answer": r["corrected"]} for r in before]
    _jsonl(
        tmp_path / "before.jsonl",
        before,
        extra_lines=["{not json", json.dumps({"image_id": 9, "answer": "x"})],
    )
    _jsonl(tmp_path / "after.jsonl", after)
    return tmp_path


def test_chair_json_keys_and_paired_comparison(invoke, chair_files):
    out = chair_files / "out.json"
    result = invoke(
        chair_files / "before.jsonl",
        chair_files / "after.jsonl",
        "--annotations",
        chair_files / "gt.json",
        "--json",
        out,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["metric"] == "chair"
    before, after = data["runs"]
    assert CHAIR_KEYS <= set(before)
    assert before["chair_s"] == 100.0 and after["chair_s"] == 0.0
    assert before["chair_i"] == pytest.approx(100 * 4 / 11, abs=1e-3)  # 3 + 3 + 2 + 3 mentions, 4 invented
    assert before["bad_lines"] == 2 and [e["line"] for e in before["errors"]] == [5, 6]
    assert before["n"] == 4 and after["bad_lines"] == 0
    lo, hi = before["chair_i_ci"]
    assert lo <= before["chair_i"] <= hi
    (comparison,) = data["comparisons"]
    assert (comparison["a"], comparison["b"], comparison["n_paired"]) == ("before.jsonl", "after.jsonl", 4)
    chair_s = comparison["rates"]["chair_s"]
    assert chair_s["diff"] == -100.0 and chair_s["test"] == "paired bootstrap" and 0 < chair_s["p"] <= 1
    assert data["settings"]["bootstrap_resamples"] == 1000 and data["settings"]["seed"] == 0


def test_text_field_and_table(invoke, chair_files):
    result = invoke(chair_files / "before.jsonl", "-a", chair_files / "gt.json", "--text-field", "corrected")
    assert result.exit_code == 0, result.output
    assert "CHAIR_s" in result.output and "0.0" in result.output
    assert "line 5" in result.output and "not valid JSON" in result.output


def test_plot_is_a_png_with_one_series_per_run(invoke, chair_files, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "plot.png"
    result = invoke(
        chair_files / "before.jsonl",
        chair_files / "after.jsonl",
        "-a",
        chair_files / "gt.json",
        "--plot",
        png,
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.container import BarContainer

    report = evaluate([chair_files / "before.jsonl", chair_files / "after.jsonl"], chair_files / "gt.json")
    (ax,) = report.figure().axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_label() for b in bars] == ["before.jsonl", "after.jsonl"]
    assert all(len(b) == 3 for b in bars)  # CHAIR_s, CHAIR_i, recall
    assert bars[0][0].get_height() == 100.0 and bars[1][0].get_height() == 0.0


def test_pope_json_per_split_and_mcnemar(invoke, tmp_path):
    for split in ("random", "adversarial"):
        qs = [
            {
                "question_id": i,
                "image": f"{i}.jpg",
                "text": "Is there a dog?",
                "label": "yes" if i % 2 else "no",
            }
            for i in range(1, 21)
        ]
        (tmp_path / f"coco_pope_{split}.json").write_text("\r\n".join(json.dumps(q) for q in qs) + "\r\n")
    qdir = tmp_path / "questions"
    qdir.mkdir()
    for f in tmp_path.glob("coco_pope_*.json"):
        f.rename(qdir / f.name)
    always_yes = [
        {"question_id": i, "split": s, "answer": "Yes, there is."}
        for s in ("random", "adversarial")
        for i in range(1, 21)
    ]
    right = [
        {"question_id": i, "split": s, "answer": "Yes" if i % 2 else "No."}
        for s in ("random", "adversarial")
        for i in range(1, 21)
    ]
    _jsonl(tmp_path / "a.jsonl", always_yes)
    _jsonl(tmp_path / "b.jsonl", right)
    out = tmp_path / "pope.json"
    result = invoke(
        tmp_path / "a.jsonl", tmp_path / "b.jsonl", "--metric", "pope", "-a", qdir, "--json", out, "-q"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    a, b = data["runs"]
    assert POPE_KEYS <= set(a) and {"accuracy_ci", "f1_ci"} <= set(a)
    assert a["yes_ratio"] == 100.0 and a["accuracy"] == 50.0 and b["accuracy"] == 100.0
    assert set(a["splits"]) == {"random", "adversarial"} and POPE_KEYS <= set(a["splits"]["random"])
    acc = data["comparisons"][0]["rates"]["accuracy"]
    assert acc["test"] == "mcnemar" and acc["only_b_right"] == 20 and acc["p"] == pytest.approx(2 * 0.5**20)
    assert set(data["comparisons"][0]["splits"]) == {"random", "adversarial"}


def test_faithfulness_needs_no_annotations(invoke, tmp_path):
    claim = {
        "text": "dog",
        "start": 0,
        "end": 3,
        "kind": "object",
        "label": "dog",
        "verdict": "supported",
        "evidence": {},
    }
    _jsonl(tmp_path / "fixed.jsonl", [{"id": 1, "answer": "a dog", "corrected": "a dog", "claims": [claim]}])
    out = tmp_path / "f.json"
    result = invoke(tmp_path / "fixed.jsonl", "--metric", "faithfulness", "--json", out, "-q")
    assert result.exit_code == 0, result.output
    run = json.loads(out.read_text())["runs"][0]
    assert run["faithfulness"] == 100.0 and run["object"] == 100.0 and run["n"] == 1


def test_usage_errors_exit_2(invoke, chair_files):
    result = invoke(chair_files / "before.jsonl", "-a", chair_files / "gt.json", "--metric", "bleu")
    assert result.exit_code == 2
    assert "chair, pope, amber, faithfulness" in result.output
    result = invoke(chair_files / "missing.jsonl", "-a", chair_files / "gt.json")
    assert result.exit_code == 2 and "not found" in result.output
    result = invoke(chair_files / "before.jsonl")
    assert result.exit_code == 2 and "--annotations" in result.output
    result = invoke(chair_files / "before.jsonl", "-a", chair_files / "nope.json")
    assert result.exit_code == 2 and "not found" in result.output


def test_nothing_scored_exits_1(invoke, chair_files):
    result = invoke(
        chair_files / "before.jsonl", "-a", chair_files / "gt.json", "--text-field", "missing", "-q"
    )
    assert result.exit_code == 1
    assert "nothing could be scored" in result.output


def test_evaluate_api_matches_the_command(chair_files):
    report = evaluate(chair_files / "after.jsonl", chair_files / "gt.json", metric="chair")
    assert report.runs[0]["chair_s"] == 0.0 and report.to_json()["runs"][0]["n"] == 4


def test_single_run_json_has_the_contract_keys_at_the_top(chair_files):
    figures = evaluate(chair_files / "after.jsonl", chair_files / "gt.json", metric="chair").to_json()
    assert CHAIR_KEYS <= figures.keys() and figures["n"] == 4 and figures["chair_s"] == 0.0
    two = evaluate([chair_files / "after.jsonl", chair_files / "after.jsonl"], chair_files / "gt.json").to_json()
    assert "chair_s" not in two and len(two["runs"]) == 2


def test_amber_scores_through_the_command_and_says_its_rules(invoke, tmp_path):
    annotations = [
        {"id": 1, "type": "generative", "truth": ["dog"], "hallu": ["cat"]},
        {"id": 2, "type": "discriminative-hallucination", "truth": "no"},
        {"id": 3, "type": "relation", "truth": "no"},
    ]
    (tmp_path / "annotations.json").write_text(json.dumps(annotations))
    (tmp_path / "relation.json").write_text(json.dumps({"dog": ["puppy"], "cat": []}))
    run = _jsonl(tmp_path / "run.jsonl", [{"id": 1, "response": "A dog and a cat."},
                                           {"id": 2, "response": "No"}, {"id": 3, "response": "No, it is not."}])
    for rules, accuracy in (("official", 50.0), ("corrected", 100.0)):
        out = tmp_path / f"{rules}.json"
        result = invoke(run, "-a", tmp_path / "annotations.json", "-m", "amber", "--rules", rules,
                        "--json", out, "-q", "--vectors", "no-such-model")
        assert result.exit_code == 0, result.output
        report = json.loads(out.read_text())
        row = report["runs"][0]
        assert row["n"] == 3 and row["chair"] == 50.0 and row["accuracy"] == accuracy
        assert report["settings"]["rules"] == rules and "no-such-model" in report["settings"]["similarity"]
    assert invoke(run, "-a", tmp_path / "annotations.json", "-m", "amber", "--rules", "loose").exit_code == 2


def test_chair_on_other_labels_takes_a_vocabulary_and_warns_without_one(invoke, tmp_path):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"1": ["moon", "diamond"], "2": ["moon"]}))
    run = _jsonl(tmp_path / "run.jsonl", [{"image_id": 1, "caption": "Two diamonds under a crescent and a star."},
                                           {"image_id": 2, "caption": "A white moon."}])
    vocabulary = tmp_path / "lab.json"
    vocabulary.write_text(json.dumps({"moon": ["crescent"], "diamond": [], "star": []}))
    out = tmp_path / "out.json"
    result = invoke(run, "-a", gt, "--json", out, "-q")
    assert result.exit_code == 0 and "none of the ground truth's 2 labels" in result.output
    assert "warnings" in json.loads(out.read_text())["settings"]
    result = invoke(run, "-a", gt, "--vocabulary", vocabulary, "--json", out, "-q")
    assert result.exit_code == 0 and "warning" not in result.output, result.output
    row = json.loads(out.read_text())["runs"][0]
    assert row["chair_i"] == pytest.approx(100 * 1 / 4) and row["recall"] == 100.0  # the star is hallucinated
