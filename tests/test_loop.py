"""generate -> fix -> eval, through the command line, on a real checkpoint (the shipped lab captioner)."""

from __future__ import annotations

import json

from halluguard.lab import CAPTIONER, DETECTOR, VOCABULARY
from tests.conftest import run_cli


def test_generate_fix_eval_loop(tmp_path):
    from halluguard.lab.evaluate import load_data

    data = load_data(8)
    images = tmp_path / "images"
    images.mkdir()
    truth = {}
    for i, (image, gt) in enumerate(zip(data.images, data.truths)):
        image.save(images / f"scene{i}.png")
        truth[f"scene{i}.png"] = gt["kinds"]
    (tmp_path / "truth.json").write_text(json.dumps(truth))

    answers = tmp_path / "answers.jsonl"
    generated = run_cli("generate", "--model", str(CAPTIONER), "--images", str(images), "--prompt",
                        "describe the image.", "--method", "vcd", "--max-new-tokens", "24", "--device", "cpu",
                        "-o", str(answers))
    assert generated.returncode == 0, generated.stderr
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert len(records) == 8 and all(r["answer"] and r["logprobs"] for r in records)

    fixed = tmp_path / "fixed.jsonl"
    corrected = run_cli("fix", str(answers), "-o", str(fixed), "--images", str(images), "--detector", str(DETECTOR),
                        "--vocabulary", str(VOCABULARY), "--mode", "lure", "--device", "cpu", "--json", "-")
    assert corrected.returncode == 0, corrected.stderr
    out = [json.loads(line) for line in fixed.read_text().splitlines()]
    claims = [c for r in out for c in r["claims"]]
    lab_labels = {label for label in json.loads(VOCABULARY.read_text()) if not label.startswith("_")}
    assert claims and all(c["label"] in lab_labels for c in claims)
    assert all("suspicion" in c for c in claims if c["kind"] == "object")

    report = tmp_path / "faithfulness.json"
    scored = run_cli("eval", str(fixed), "--metric", "faithfulness", "--json", str(report), "-q")
    assert scored.returncode == 0, scored.stderr
    figures = json.loads(report.read_text())
    assert figures["n"] == 8 and 0 <= figures["faithfulness"] <= 100
