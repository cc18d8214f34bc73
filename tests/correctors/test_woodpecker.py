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
