"""The lab across training seeds: each seed's full table, and the spread the CI ranges come from.

Train the seeds first (commands in the README, "Regenerating the models"), then::

    python benchmarks/lab_seeds.py --seed 0=cap0,det0/detector.pt --seed 1=cap1,det1/detector.pt \\
        --seed 2=cap2,det2/detector.pt --ranges-from 0,1 --out out/lab-seeds

For each ``--seed S=CAPTIONER,DETECTOR`` it writes ``OUT/seed-S/`` (what ``halluguard demo`` writes:
``run_lab`` on 1,000 test images with that seed's captioner and detector) and adds to ``OUT/seeds.md``:
the seed's full table, then one table over all seeds on the CI test's 300 images (greedy, VCD at
``noise_step=500``, ``fix``; the detector's object recall and precision), and the ranges that
``tests/lab/test_lab_shipped.py`` uses: over the seeds of ``--ranges-from`` (the full-recipe ones), from
the lowest lower end to the highest upper end of their 95 % intervals, rounded outwards.

About 70 s per seed on 2 CPU cores with native bfloat16 (the captioner's default dtype there).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

CI_IMAGES = 300  # the CI test's subset (tests/lab/test_lab_shipped.py)
RATES = ("recall", "chair_i", "chair_s", "prior", "control")


def parse_seed(text: str) -> tuple[str, Path, Path]:
    """``"S=CAPTIONER,DETECTOR"`` -> ``(S, captioner folder, detector file)``.

    >>> parse_seed("2=runs/cap2,runs/det2/detector.pt")
    ('2', PosixPath('runs/cap2'), PosixPath('runs/det2/detector.pt'))
    """
    name, sep, paths = text.partition("=")
    captioner, comma, detector = paths.partition(",")
    if not (sep and comma and name and captioner and detector):
        raise argparse.ArgumentTypeError(f"--seed {text!r}: expected S=CAPTIONER_FOLDER,DETECTOR_FILE")
    return name, Path(captioner), Path(detector)


def ci_figures(model: Any, detector: Path, threads: int = 2) -> dict[str, Any]:
    """Greedy, VCD (``noise_step=500``) and greedy + ``fix`` on the CI subset, and the detector's scores.

    ``model``: a loaded :class:`halluguard.lab.evaluate.Captioner`.
    """
    import torch

    from halluguard.lab import evaluate, scoring

    torch.set_num_threads(threads)
    data = evaluate.load_data(CI_IMAGES)
    greedy = model.caption(data.images)
    out = {"greedy": scoring.score(greedy, data.truths).summary(n_resamples=1000)}
    if evaluate.decoders_available():
        method, params = evaluate.METHODS["vcd T=500"]
        out["vcd T=500"] = scoring.score(model.caption(data.images, method, **params), data.truths).rates()
    with tempfile.TemporaryDirectory(prefix="halluguard-seeds-") as tmp:
        fixed = evaluate.Corrections(data, Path(tmp), detector, weak=False).correct("fixed", greedy)
    out["fixed"] = scoring.score(fixed, data.truths).rates()
    out["detector"] = evaluate.score_detector(detector, data)
    return out


def spread(figures: dict[str, dict[str, Any]], seeds: list[str]) -> dict[str, tuple[int, int]]:
    """Per rate: (floor of the lowest lower end, ceil of the highest upper end) of the seeds' intervals.

    >>> spread({"0": {"greedy": {"recall_ci": [77.2, 82.8]}}, "1": {"greedy": {"recall_ci": [83.0, 89.9]}}},
    ...        ["0", "1"])["recall"]
    (77, 90)
    """
    out = {}
    for rate in RATES:
        ends = [figures[s]["greedy"].get(rate + "_ci") for s in seeds]
        ends = [e for e in ends if e]
        if ends:
            out[rate] = (math.floor(min(e[0] for e in ends)), math.ceil(max(e[1] for e in ends)))
    return out


def seeds_markdown(figures: dict[str, dict[str, Any]], ranges: dict[str, tuple[int, int]]) -> str:
    """The across-seeds table and the derived ranges, as Markdown."""
    def three(rates: dict[str, float] | None, keys=("chair_i", "recall", "prior")) -> str:
        return " · ".join(f"{rates[k]:.1f}" for k in keys) if rates else "-"

    lines = [f"### Across seeds (CI subset: {CI_IMAGES} images, half prior-breaking)", "",
             "| seed | greedy CHAIR_i · recall · prior · control | VCD T=500 CHAIR_i · recall · prior "
             "| fixed (own detector) CHAIR_i · recall · prior | detector recall · precision |",
             "| --- | --- | --- | --- | --- |"]
    for seed, f in figures.items():
        greedy = three(f["greedy"], ("chair_i", "recall", "prior", "control"))
        detector = f"{f['detector']['recall']:.1f} · {f['detector']['precision']:.1f}"
        lines.append(f"| {seed} | {greedy} | {three(f.get('vcd T=500'))} | {three(f['fixed'])} | {detector} |")
    if ranges:
        lines += ["", "Ranges for `tests/lab/test_lab_shipped.py` (95 % intervals of the full-recipe seeds, "
                  "outer ends): " + ", ".join(f"{k} {lo}–{hi}" for k, (lo, hi) in ranges.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=parse_seed, action="append", required=True,
                        help="S=CAPTIONER_FOLDER,DETECTOR_FILE (repeat for each seed)")
    parser.add_argument("--ranges-from", default=None,
                        help="comma-separated seeds trained with the full recipe [default: all]")
    parser.add_argument("--images", type=int, default=1000, help="test images of each full table")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("out/lab-seeds"))
    args = parser.parse_args(argv)

    from halluguard.lab import evaluate

    args.out.mkdir(parents=True, exist_ok=True)
    sections, figures = [], {}
    for seed, captioner, detector in args.seed:
        model = evaluate.Captioner(captioner)
        results = evaluate.run_lab(args.images, captioner=model, detector=detector,
                                   threads=args.threads, progress=print)
        results.write(args.out / f"seed-{seed}")
        sections.append(f"### Seed {seed}, full table ({args.images} images; {results.meta['dtype']})\n\n"
                        + results.markdown())
        figures[seed] = ci_figures(model, detector, args.threads)
        print(f"seed {seed}: done", flush=True)
    full = args.ranges_from.split(",") if args.ranges_from else list(figures)
    text = "\n\n".join(sections + [seeds_markdown(figures, spread(figures, full))]) + "\n"
    (args.out / "seeds.md").write_text(text)
    (args.out / "seeds.json").write_text(json.dumps(figures, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
