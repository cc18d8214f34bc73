"""``halluguard demo``: the product end to end, offline.

1. ``fix`` on the example set (ten real photos, hand-drawn labels, answers that hallucinate): with
   the labels as the detector (the oracle), then with a real detector (Ultralytics' person model),
   and ``eval`` of the answers before and after.
2. The hallucination lab, when its trained models are shipped: a small captioner generates with
   each decoding method, ``fix`` corrects with the lab detector, and ``eval`` measures it all.

Outputs go under ``--output`` (default ``out/demo``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_demo(output: Path, quiet: bool = False) -> int:
    """Run the demo, write its outputs under ``output``; returns the exit code."""
    from rich.console import Console

    console = Console(quiet=False)
    if not (EXAMPLES / "answers.jsonl").exists():
        console.print(f"halluguard demo: the example set is missing ({EXAMPLES}); run it from a source checkout")
        return 2
    output.mkdir(parents=True, exist_ok=True)
    status = _examples(output, console, quiet)
    lab = _lab(output, console, quiet)
    return max(status, lab)


def _examples(output: Path, console: Any, quiet: bool) -> int:
    from halluguard.metrics import evaluate
    from halluguard.pipeline import fix

    console.rule("[bold]1. fix + eval on the example set (10 real photos)")
    answers, labels = EXAMPLES / "answers.jsonl", EXAMPLES / "labels.json"
    oracle = output / "examples.oracle.jsonl"
    summary = fix(answers, oracle, detector=f"annotations:{labels}", options={"detector_labels": "coco"})
    console.print(f"fix, labels as the detector: {summary.line()}")
    records = [json.loads(line) for line in oracle.read_text().splitlines()]
    described = [r for r in records if not r.get("question", "").lower().startswith("is there")]
    yes_no = [r for r in records if r not in described]
    report = evaluate([described, described], labels, metric="chair", text_field=["answer", "corrected"],
                      names=["answers", "fixed"], n_resamples=500)
    before, after = report.runs
    console.print(
        f"CHAIR_s {before['chair_s']:.0f} -> {after['chair_s']:.0f}   CHAIR_i {before['chair_i']:.1f} -> "
        f"{after['chair_i']:.1f}   recall {before['recall']:.0f} -> {after['recall']:.0f}   "
        f"(n = {before['n']}; CHAIR counts 'orange' in 'orange suit' as the fruit)"
    )
    right = _yes_no_right(yes_no, labels)
    console.print(f"yes/no questions answered right: {right[0]}/{len(yes_no)} -> {right[1]}/{len(yes_no)}")
    if not quiet:
        for record in described[:4] + yes_no[:1]:
            console.print(f"  [dim]{record['image'].split('/')[-1]}[/] {record['answer']}")
            console.print(f"  [green]->[/] {record['corrected']}")
    from halluguard.detectors.base import DetectorError

    person = output / "examples.person.jsonl"
    try:
        summary = fix(answers, person, detector="person")
    except (DetectorError, ImportError) as exc:  # the optional backend may be absent: say so, go on
        console.print(f"[yellow]real detector skipped[/]: {exc}")
        return 0
    people = [c for line in person.read_text().splitlines() for c in json.loads(line)["claims"]
              if c["label"] == "person"]
    verdicts = {v: sum(c["verdict"] == v for c in people) for v in ("supported", "contradicted", "unverifiable")}
    console.print(f"fix, real detector (YOLO11n-pose, person only): {summary.line()}")
    console.print(f"  person claims: {verdicts}; every other object stays unverifiable (the model cannot see it)")
    return 0


def _yes_no_right(records: list[dict[str, Any]], labels: Path) -> tuple[int, int]:
    from halluguard.correctors.vocabulary import Vocabulary
    from halluguard.correctors.yesno import question_object
    from halluguard.metrics.pope import parse_answer

    truth = json.loads(labels.read_text())
    vocabulary = Vocabulary.default()
    right = [0, 0]
    for record in records:
        present = {d["label"] for d in truth[record["image"].split("/")[-1]]}
        expected = "yes" if vocabulary.lookup(question_object(record["question"]) or "") in present else "no"
        right[0] += parse_answer(record["answer"]) == expected
        right[1] += parse_answer(record["corrected"]) == expected
    return right[0], right[1]


#: what the demo measures on the lab: every method of the table on 1,000 test images, each corrected
#: with the lab detector and with a weakened copy, and the strength sweep on 200 of them
LAB_DEMO = {"n_images": 1000, "sweep_images": 200, "n_resamples": 500}


def _lab(output: Path, console: Any, quiet: bool) -> int:
    from halluguard.lab import CAPTIONER, DETECTOR

    if not (CAPTIONER / "config.json").exists() or not DETECTOR.exists():
        console.print("[yellow]the lab's trained models are not in this installation: lab part skipped[/]")
        return 0
    from transformers.utils import logging as transformers_logging

    from halluguard.lab.evaluate import run_lab

    transformers_logging.disable_progress_bar()
    console.rule("[bold]2. the hallucination lab: generate -> fix -> eval (shipped captioner and detector)")
    results = run_lab(**LAB_DEMO, threads=2, progress=None if quiet else console.print)
    print(results.table())
    results.write(output / "lab")
    console.print(f"lab results: {output / 'lab'} (table, JSON, trade-off plot)")
    return 0
