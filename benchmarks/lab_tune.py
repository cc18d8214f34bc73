"""Tune a decoder's parameters on the lab's validation split, then measure the choice on the test split.

    python benchmarks/lab_tune.py pai --grid alpha=0.2,0.5,1,2 --grid gamma=1,1.1,1.5

On ``--images`` validation scenes (``load_data(split="val")``, half prior-breaking: never the test
split) it captions greedily and with the method at every point of the grid, and chooses the point
that cuts the prior-driven rate the most among those that lose at most ``--max-recall-loss`` points
of recall (ties: the lower CHAIR_i). It then captions ``--test`` test scenes greedily and with the
choice, and prints both tables (rates in %, 95 % intervals on the test split) and whether the
project's goal holds there: prior-driven rate -30 % and CHAIR_i -20 % (relative) at <= 2 points of
recall.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

RATES = ("chair_i", "chair_s", "recall", "prior", "control")
GOAL = {"prior": -30.0, "chair_i": -20.0, "recall": -2.0}


def parse_grid(items: list[str]) -> dict[str, list[float]]:
    """``["alpha=0.2,0.5", "gamma=1"]`` -> ``{"alpha": [0.2, 0.5], "gamma": [1.0]}``.

    >>> parse_grid(["alpha=0.2,0.5", "start_layer=0"])
    {'alpha': [0.2, 0.5], 'start_layer': [0]}
    """
    grid = {}
    for item in items:
        name, _, values = item.partition("=")
        grid[name] = [json.loads(v) for v in values.split(",")]
    return grid


def choose(points: list[dict], greedy: dict, max_recall_loss: float) -> dict:
    """The point with the lowest prior-driven rate within the recall budget (ties: lower CHAIR_i)."""
    allowed = [p for p in points if p["rates"]["recall"] >= greedy["recall"] - max_recall_loss]
    return min(allowed or points, key=lambda p: (p["rates"]["prior"], p["rates"]["chair_i"]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method")
    parser.add_argument("--grid", action="append", default=[], help="NAME=V1,V2,... (repeatable)")
    parser.add_argument("--images", type=int, default=400, help="validation scenes")
    parser.add_argument("--test", type=int, default=1000, help="test scenes")
    parser.add_argument("--max-recall-loss", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from halluguard.lab import evaluate, scoring

    torch.set_num_threads(args.threads)
    captioner = evaluate.Captioner(evaluate.CAPTIONER)
    started = time.perf_counter()
    val = evaluate.load_data(args.images, split="val")
    greedy = scoring.score(captioner.caption(val.images), val.truths).rates()
    grid = parse_grid(args.grid)
    points = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        rates = scoring.score(captioner.caption(val.images, args.method, **params), val.truths).rates()
        points.append({"params": params, "rates": rates})
    print(f"validation, {args.images} scenes ({time.perf_counter() - started:.0f} s): rates in %")
    print("| setting | " + " | ".join(RATES) + " |\n|---|" + "---|" * len(RATES))
    print("| greedy | " + " | ".join(f"{greedy[k]:.1f}" for k in RATES) + " |")
    for point in points:
        setting = ", ".join(f"{k}={v}" for k, v in point["params"].items())
        print(f"| {setting} | " + " | ".join(f"{point['rates'][k]:.1f}" for k in RATES) + " |")
    best = choose(points, greedy, args.max_recall_loss)
    print(f"chosen on validation: {best['params']}")

    test = evaluate.load_data(args.test)
    summaries = {
        "greedy": scoring.score(captioner.caption(test.images), test.truths).summary(n_resamples=1000),
        "chosen": scoring.score(
            captioner.caption(test.images, args.method, **best["params"]), test.truths
        ).summary(n_resamples=1000),
    }
    print(f"\ntest, {args.test} scenes: {args.method} {best['params']} against greedy")
    print("| run | " + " | ".join(RATES) + " |\n|---|" + "---|" * len(RATES))
    for run, s in summaries.items():
        cells = [f"{s[k]:.1f} [{s[k + '_ci'][0]:.1f}, {s[k + '_ci'][1]:.1f}]" for k in RATES]
        print(f"| {run} | " + " | ".join(cells) + " |")
    g, c = summaries["greedy"], summaries["chosen"]
    change = {k: 100.0 * (c[k] - g[k]) / g[k] for k in ("prior", "chair_i")}
    met = change["prior"] <= GOAL["prior"] and change["chair_i"] <= GOAL["chair_i"]
    met = met and c["recall"] - g["recall"] >= GOAL["recall"]
    print(
        f"prior-driven {change['prior']:+.0f} %, CHAIR_i {change['chair_i']:+.0f} %, recall "
        f"{c['recall'] - g['recall']:+.1f} points: the goal is {'met' if met else 'not met'}"
    )


if __name__ == "__main__":
    main()
