"""``halluguard demo``: the product end to end, offline, in about a minute on 2 CPU cores.

1. ``fix`` on the example set (ten real photos, hand-drawn labels, answers that hallucinate): with
   the labels as the detector (the oracle), then with a real detector (Ultralytics' person model),
   and ``eval`` of the answers before and after.
2. The hallucination lab, when its trained models are installed: a small captioner generates with
   each decoding method, ``fix`` corrects with the lab detector (and a weakened copy), ``eval``
   measures it all with 95 % intervals, and each decoder's strength is swept for the trade-off plot.

``--full`` measures the lab on 1,000 images (the table in ``benchmarks/RESULTS.md``); the default is
sized to finish within 90 s on a 2-core CPU without native bfloat16. Outputs go under ``--output``
(default ``out/demo``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent / "examples"  # package data: in the wheel too

#: the lab part of the demo: test images, sweep images, bootstrap resamples
LAB_DEMO = {"n_images": 250, "sweep_images": 60, "n_resamples": 500, "slow_sweeps": False}
LAB_FULL = {"n_images": 1000, "sweep_images": 200, "n_resamples": 500}
#: seconds per lab image of the whole lab part (every method, both corrections, the sweep), measured on
#: the reference 2-core machines: with native bfloat16, and in float32
SECONDS_PER_IMAGE = {"bfloat16": 0.15, "float32": 0.27}


def run_demo(output: Path, quiet: bool = False, full: bool = False, n_images: int | None = None) -> int:
    """Run the demo, write its outputs under ``output``; returns the exit code."""
    from rich.console import Console

    console = Console()
    if not (EXAMPLES / "answers.jsonl").exists():
        console.print(f"halluguard demo: the example set is missing ({EXAMPLES}); reinstall halluguard-vlm")
        return 2
    output.mkdir(parents=True, exist_ok=True)
    settings = dict(LAB_FULL if full else LAB_DEMO)
    if n_images:
        settings.update(n_images=n_images, sweep_images=min(settings["sweep_images"], n_images))
    started = time.perf_counter()
    status = _examples(output, console, quiet)
    lab = _lab(output, console, quiet, settings)
    console.print(f"[bold]demo done in {time.perf_counter() - started:.0f} s[/]; outputs in {output}")
    return max(status, lab)


def _interval(row: dict[str, Any], key: str) -> str:
    lo, hi = row.get(f"{key}_ci", (float("nan"),) * 2)
    return f"{row[key]:.1f} [{lo:.1f}, {hi:.1f}]"


def _examples(output: Path, console: Any, quiet: bool) -> int:
    from halluguard.metrics import evaluate
    from halluguard.pipeline import fix

    console.rule("[bold]1. fix + eval on the example set (10 real photos)")
    answers, labels = EXAMPLES / "answers.jsonl", EXAMPLES / "labels.json"
    oracle = output / "examples.oracle.jsonl"
    summary = fix(answers, oracle, detector=f"annotations:{labels}", options={"detector_labels": "coco"})
    console.print(f"fix, the hand-drawn labels as the detector: {summary.line()}")
    records = [json.loads(line) for line in oracle.read_text().splitlines()]
    described = [r for r in records if not r.get("question", "").lower().startswith("is there")]
    yes_no = [r for r in records if r not in described]
    report = evaluate([described, described], labels, metric="chair", text_field=["answer", "corrected"],
                      names=["answers", "fixed"], n_resamples=500)
    before, after = report.runs
    console.print(
        f"CHAIR_s (answers naming an object that is not there) {_interval(before, 'chair_s')} -> "
        f"{_interval(after, 'chair_s')}\nCHAIR_i (such mentions among all object mentions) "
        f"{_interval(before, 'chair_i')} -> {_interval(after, 'chair_i')}\nrecall (objects there that the answer "
        f"names) {_interval(before, 'recall')} -> {_interval(after, 'recall')}   (%, 95 % intervals, n = {before['n']})",
        highlight=False,
    )
    console.print("[dim]the corrections and the scores use the same labels here (an oracle detector): this shows "
                  "what fix does when the detector is right, not how right a detector is[/]")
    right = _yes_no_right(yes_no, labels)
    console.print(f"yes/no questions answered right: {right[0]}/{len(yes_no)} -> {right[1]}/{len(yes_no)}")
    if not quiet:
        for record in described[:4] + yes_no[:1]:
            console.print(f"  [dim]{record['image'].split('/')[-1]}[/] {record['answer']}", highlight=False)
            console.print(f"  [green]->[/] {record['corrected']}", highlight=False)
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
    console.print(f"fix, a real detector (YOLO11n-pose, people only): {summary.line()}")
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


def _lab(output: Path, console: Any, quiet: bool, settings: dict[str, int]) -> int:
    from halluguard.lab import CAPTIONER, DETECTOR

    if not (CAPTIONER / "config.json").exists() or not DETECTOR.exists():
        console.print("[yellow]the lab's trained models are not in this installation: lab part skipped[/]")
        return 0
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers.utils import logging as transformers_logging

    from halluguard.lab.captioner import cpu_dtype
    from halluguard.lab.evaluate import run_lab

    transformers_logging.disable_progress_bar()
    dtype = str(cpu_dtype()).replace("torch.", "")
    expected = SECONDS_PER_IMAGE.get(dtype, SECONDS_PER_IMAGE["float32"]) * settings["n_images"]
    console.rule("[bold]2. the hallucination lab: generate -> fix -> eval (shipped captioner and detector)")
    console.print(f"{settings['n_images']} lab test images, every decoding method, fix with the lab detector and "
                  f"with a weakened one, the strength sweep on {settings['sweep_images']}: about {expected:.0f} s "
                  f"here ({dtype}, 2 threads)", highlight=False)
    columns = (TextColumn("{task.description:<34}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, disable=quiet, transient=False) as bar:
        task = bar.add_task("loading the captioner", total=None)

        def step(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total)

        results = run_lab(**settings, threads=2, on_step=step)
    console.print(results.table(), highlight=False, soft_wrap=True)  # whole rows, also when piped
    paths = results.write(output / "lab")
    console.print(_plain_summary(results), highlight=False, soft_wrap=True)
    console.print(f"lab results: {paths['table']}, {paths['json']}" + (f", {paths['png']}" if "png" in paths else ""))
    return 0


def _plain_summary(results: Any) -> str:
    """What the lab table says, in words: what dropped, by how much, with intervals."""
    greedy, fixed = results.row("greedy"), results.row("greedy", "fixed")
    lines = [f"In plain words, on {results.meta['n_images']} lab images (rates in %, 95 % intervals):",
             f"- fix with the lab detector takes CHAIR_i from {_interval(greedy, 'chair_i')} to "
             f"{_interval(fixed, 'chair_i')} and the prior-driven rate from {_interval(greedy, 'prior')} to "
             f"{_interval(fixed, 'prior')}; recall {greedy['recall']:.1f} -> {fixed['recall']:.1f}."]
    decoders = [r for r in results.rows if r["stage"] == "generated" and r["method"] != "greedy"]
    if decoders:
        best = min(decoders, key=lambda r: r["prior"])
        change = 100 * (best["prior"] - greedy["prior"]) / greedy["prior"] if greedy["prior"] else float("nan")
        lines.append(
            f"- the decoder that removes most of the language prior, {best['method']}, takes the prior-driven rate "
            f"to {_interval(best, 'prior')} ({change:+.0f} %) and CHAIR_i to {_interval(best, 'chair_i')}, at "
            f"recall {best['recall']:.1f}; decoders act while generating, fix acts after, and both combine."
        )
    return "\n".join(lines)
