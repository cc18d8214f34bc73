"""Metric speed: CHAIR on 500 real captions (target < 2 s), the full `eval` path, POPE with intervals.

    pytest benchmarks/bench_metrics.py --benchmark-only

CHAIR is timed cold: the singulariser's cache is cleared before every round. The real captions are
``../shared/data/coco500`` beside the project (the benchmarks needing them skip when it is absent).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

COCO500 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "coco500"


@pytest.fixture(scope="module")
def coco500():
    if not (COCO500 / "gt_objects.json").exists():
        pytest.skip("../shared/data/coco500 is not present")
    return COCO500


def _clear_caches():
    from halluguard.metrics import coco_vocabulary as V
    from halluguard.metrics import official_text

    V.singularize.cache_clear()
    official_text.singularize.cache_clear()


def test_chair_500_captions(benchmark, coco500):
    from halluguard.metrics.chair import compute_chair, load_ground_truth

    gt = load_ground_truth(coco500 / "gt_objects.json")
    lines = (coco500 / "llava15_greedy.jsonl").read_text().splitlines()
    pairs = [(r["image_id"], r["caption"]) for r in map(json.loads, lines)]
    result = benchmark.pedantic(
        lambda: compute_chair(pairs, gt), setup=_clear_caches, rounds=10, iterations=1
    )
    assert result.n == 500 and round(result.chair_s, 1) == 45.0
    assert benchmark.stats.stats.median < 2.0
    benchmark.extra_info["captions_per_s"] = round(500 / benchmark.stats.stats.median)


def test_eval_one_run_with_intervals(benchmark, coco500):
    from halluguard.metrics import evaluate

    def run():
        _clear_caches()
        return evaluate(coco500 / "llava15_greedy.jsonl", coco500 / "gt_objects.json")

    report = benchmark.pedantic(run, rounds=3, iterations=1)
    assert report.runs[0]["n"] == 500 and "chair_s_ci" in report.runs[0]


def test_eval_two_runs_paired(benchmark, coco500):
    from halluguard.metrics import evaluate

    runs = [coco500 / "llava15_greedy.jsonl", coco500 / "llava15_opera.jsonl"]
    report = benchmark.pedantic(lambda: evaluate(runs, coco500 / "gt_objects.json"), rounds=3, iterations=1)
    assert report.comparisons[0]["n_paired"] == 500


def test_pope_9000_answers_with_intervals(benchmark):
    from halluguard.metrics import evaluate

    rng = random.Random(0)
    questions = [
        {
            "question_id": i,
            "image": f"{i // 6}.jpg",
            "text": "Is there a dog in the image?",
            "label": "yes" if i % 2 else "no",
            "split": split,
        }
        for split in ("random", "popular", "adversarial")
        for i in range(1, 3001)
    ]
    answers = [
        {
            "question_id": q["question_id"],
            "split": q["split"],
            "answer": rng.choice(["Yes, there is a dog.", "No.", "I am not sure."]),
        }
        for q in questions
    ]
    report = benchmark.pedantic(lambda: evaluate(answers, questions, metric="pope"), rounds=3, iterations=1)
    assert report.runs[0]["n"] == 9000 and set(report.runs[0]["splits"]) == {
        "random",
        "popular",
        "adversarial",
    }
