"""The corrector end to end through `fix`, with the annotations backend on real captions."""

from __future__ import annotations

import json

from halluguard.correctors.claims import extract_claims
from halluguard.pipeline import fix


def test_fix_with_annotations_leaves_only_objects_in_the_ground_truth(coco500, tmp_path):
    out = tmp_path / "fixed.jsonl"
    summary = fix(coco500 / "llava15_greedy.jsonl", out, detector=f"annotations:{coco500 / 'gt_objects.json'}",
                  options={"detector_labels": "coco"})
    assert summary.records == summary.written == 500 and summary.corrected > 150
    truth = json.loads((coco500 / "gt_objects.json").read_text())
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for record, claims in zip(records, extract_claims([r["corrected"] for r in records])):
        mentioned = {c.label for c in claims if c.kind == "object"}
        assert mentioned <= set(truth[str(record["image_id"])]), (record["image_id"], record["corrected"])
    assert all(r["caption"] == r["corrected"] for r in records if not r["edits"])


def test_a_yes_no_answer_stored_without_its_question_is_still_corrected_as_one(tmp_path):
    from halluguard.correctors.woodpecker import Woodpecker
    from halluguard.images import ImageRef
    from halluguard.records import Answer

    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"1": ["cat"]}))
    corrector = Woodpecker.from_spec(f"annotations:{labels}", detector_labels="coco")
    answers = [
        Answer("Yes, there is a dog in the image.", {}, 0, image_id=1),
        Answer("No, there is no cat.", {}, 1, image_id=1),
        Answer("No dogs are visible, but a cat sleeps on the bed.", {}, 2, image_id=1),
    ]
    results = corrector.correct(answers, [ImageRef(None, "1")] * 3)
    assert [r.corrected for r in results] == [
        "No, there is no dog in the image.",
        "Yes, there is a cat.",
        "No dogs are visible, but a cat sleeps.",  # "No" here is no answer: the caption is corrected as one
    ]
    assert results[0].claims[0].evidence["asserts"] == "present" and results[0].edits[0].reason.startswith("yes/no")
