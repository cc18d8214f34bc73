"""`fix` on Ray Data against the local pipeline: records/s for 20,000 answers over 200 images.

    pytest benchmarks/bench_ray.py --benchmark-only

Answers: the 500 real LLaVA-1.5 captions beside the project, 40 copies each (each copy made unique,
so no cache can help), spread over 200 COCO images; detector: the COCO annotations (so what is
measured is the pipeline, not a model). Ray runs on a local cluster of 2 CPUs with 1 and 2 workers
per stage; its fixed start-up cost is measured apart.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

COCO500 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco500"
N_ANSWERS, N_IMAGES = 20_000, 200

pytestmark = pytest.mark.skipif(not COCO500.exists(), reason="../shared/data/coco500 is not present")


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> Path:
    captions = [json.loads(line) for line in (COCO500 / "llava15_greedy.jsonl").read_text().splitlines()]
    images = [c["image_id"] for c in captions[:N_IMAGES]]
    path = tmp_path_factory.mktemp("ray") / "answers.jsonl"
    with open(path, "w") as handle:
        for i in range(N_ANSWERS):
            caption = captions[i % len(captions)]
            text = f"{caption['caption']} This is answer {i // len(captions)}."
            handle.write(json.dumps({"id": i, "image_id": images[i % N_IMAGES], "answer": text}) + "\n")
    return path


@pytest.fixture(scope="module")
def detector() -> str:
    return f"annotations:{COCO500 / 'gt_objects.json'}"


def _record(benchmark, summary) -> None:
    assert summary.records == N_ANSWERS and summary.errors == 0
    benchmark.extra_info["records_per_s"] = round(N_ANSWERS / summary.seconds, 1)
    benchmark.extra_info["corrected"] = summary.corrected


def test_local_fix(benchmark, answers, detector, tmp_path):
    from halluguard.pipeline import fix

    summary = benchmark.pedantic(lambda: fix(answers, tmp_path / "local.jsonl", detector=detector,
                                             options={"detector_labels": "coco"}), rounds=1, iterations=1)
    _record(benchmark, summary)


def test_ray_start_up(benchmark):
    import ray
    import ray.data

    def start():
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.data.from_items([{"x": 1}]).map_batches(lambda b: b).take_all()
        seconds = time.perf_counter() - started
        ray.shutdown()
        return seconds

    seconds = benchmark.pedantic(start, rounds=1, iterations=1)
    benchmark.extra_info["start_up_s"] = round(seconds, 2)
    assert 0 < seconds < 120, "a local Ray start should take seconds"


@pytest.mark.parametrize("workers", [1, 2])
def test_ray_fix(benchmark, answers, detector, tmp_path, workers):
    import ray

    from halluguard.integrations.ray import fix_files

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        stats: dict = {}
        summary = benchmark.pedantic(
            lambda: fix_files(answers, tmp_path / f"ray{workers}.jsonl", detector=detector,
                              options={"detector_labels": "coco"}, concurrency=workers, stats=stats),
            rounds=1, iterations=1)
    finally:
        ray.shutdown()
    _record(benchmark, summary)
    assert stats["detector_calls"] == N_IMAGES
