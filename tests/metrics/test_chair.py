"""CHAIR against hand-computed cases, the annotation loaders, and the coco500 cross-check."""

from __future__ import annotations

import json
import re

import pytest

from halluguard.metrics.chair import compute_chair, evaluate_run, load_ground_truth, score_caption
from halluguard.metrics.runs import Run, UsageError


def test_hand_computed_example():
    gt = {"1": {"person", "dog", "frisbee"}, "2": {"cat", "couch"}, "3": {"car"}}
    captions = [
        # mentions: man(person), dog, frisbee, dog, bench -> 1 hallucinated of 5; recalls 3/3
        ("1", "A man throws a frisbee to his dog. The dog runs past a bench."),
        # mentions: cat, sofa(couch) -> 0 of 2; recalls 2/2
        ("2", "A cat sleeps on a sofa."),
        # mentions: none -> not hallucinated; recalls 0/1
        ("3", "A quiet street at night."),
    ]
    result = compute_chair(captions, gt)
    assert result.n == 3
    assert result.chair_s == pytest.approx(100 * 1 / 3)
    assert result.chair_i == pytest.approx(100 * 1 / 7)
    assert result.recall == pytest.approx(100 * 5 / 6)
    assert result.avg_words == pytest.approx((14 + 6 + 5) / 3)
    assert [m.label for m in result.captions[0].hallucinated] == ["bench"]


def test_repeated_hallucination_counts_per_mention():
    s = score_caption("A bench, a bench and a dog.", {"dog"})
    assert [m.label for m in s.hallucinated] == ["bench", "bench"]
    assert len(s.mentions) == 3 and s.recalled == frozenset({"dog"})


def test_no_mentions_and_empty_caption():
    result = compute_chair([("1", ""), ("1", "Nothing here.")], {"1": {"dog"}})
    assert result.chair_s == 0.0 and result.recall == 0.0
    assert result.chair_i != result.chair_i  # NaN: no mention at all


def test_image_keys_normalise_coco_file_names():
    result = compute_chair([("COCO_val2014_000000000139.jpg", "A dog.")], {139: ["dog"]})
    assert result.chair_s == 0.0 and result.recall == 100.0
    with pytest.raises(KeyError):
        compute_chair([("140", "A dog.")], {139: ["dog"]})


def test_ground_truth_from_coco_instances_and_captions(tmp_path):
    instances = {
        "images": [{"id": 1}, {"id": 2}, {"id": 3}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 62, "name": "chair"}],
        "annotations": [
            {"image_id": 1, "category_id": 18},
            {"image_id": 1, "category_id": 18},
            {"image_id": 2, "category_id": 62},
        ],
    }
    captions = {
        "images": [{"id": 1}, {"id": 2}, {"id": 3}],
        "annotations": [
            {"image_id": 1, "caption": "A puppy on a couch."},
            {"image_id": 3, "caption": "Two hot dogs on a plate."},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    gt = load_ground_truth(tmp_path / "instances.json", tmp_path / "captions.json")
    assert gt == {"1": {"dog", "couch"}, "2": {"chair"}, "3": {"hot dog"}}
    only_instances = load_ground_truth(tmp_path / "instances.json")
    assert only_instances["3"] == frozenset()  # an image without objects is still known


def test_ground_truth_errors(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"what": 1}))
    with pytest.raises(UsageError, match="not a ground-truth file"):
        load_ground_truth(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="not found"):
        load_ground_truth(tmp_path / "missing.json")
    with pytest.raises(UsageError):
        load_ground_truth()


def test_evaluate_run_reports_unknown_images_with_line_numbers():
    run = Run.from_records(
        [
            {"image_id": 1, "caption": "A dog."},
            {"image_id": 9, "caption": "A cat."},
            {"caption": "A cow."},
            "x",
        ],
        name="r",
    )
    result = evaluate_run(run, {"1": frozenset({"dog"})})
    assert result.summary["n"] == 1
    assert [e["line"] for e in result.errors] == [2, 3, 4]
    assert "not in the annotations" in result.errors[0]["reason"]


def _reference_table(readme: str) -> dict[str, tuple[float, float, float]]:
    rows = re.findall(r"^\|\s*(\w+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*$", readme, re.M)
    return {name: (float(a), float(b), float(c)) for name, a, b, c in rows}


def test_coco500_matches_the_reference_chair(coco500):
    reference = _reference_table((coco500 / "README.md").read_text())
    assert len(reference) == 4
    gt = load_ground_truth(coco500 / "gt_objects.json")
    for name, (chair_s, chair_i, recall) in reference.items():
        lines = (coco500 / f"{name}.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        result = compute_chair([(r["image_id"], r["caption"]) for r in records], gt)
        assert result.n == 500
        assert result.chair_s == pytest.approx(chair_s, abs=0.5), name
        assert result.chair_i == pytest.approx(chair_i, abs=0.5), name
        assert result.recall == pytest.approx(recall, abs=0.5), name


def test_coco500_english_singulariser_finds_more_objects(coco500):
    gt = load_ground_truth(coco500 / "gt_objects.json")
    lines = (coco500 / "llava15_greedy.jsonl").read_text().splitlines()
    pairs = [(r["image_id"], r["caption"]) for r in map(json.loads, lines)]
    standard, english = compute_chair(pairs, gt), compute_chair(pairs, gt, standard=False)
    assert english.recall > standard.recall  # "bus" counts in English, not in the standard script
    assert english.chair_s == standard.chair_s
