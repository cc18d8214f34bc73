"""What the per-method decoding benchmarks share: a run of 1 and of ``NEW_TOKENS`` new tokens per row,
the cost of a decoded token from the two, and the same measurements without pytest-benchmark.

>>> results = {("plain", 1, 1): 1.0, ("plain", 1, NEW_TOKENS): 1.0 + 0.02 * (NEW_TOKENS - 1)}
>>> round(step_cost(results, "plain", 1), 4)
0.02
"""

from __future__ import annotations

import time
from typing import Callable

import torch
import transformers
from bench_decoders import NEW_TOKENS

Results = dict[tuple[str, int, int], float]


def step_cost(results: Results, name: str, batch: int) -> float:
    """Seconds per decoded token: the prefill (the 1-token run) taken off, as in ``bench_decoders``."""
    return (results[(name, batch, NEW_TOKENS)] - results[(name, batch, 1)]) / (NEW_TOKENS - 1)


def table(
    results: Results, model, names: list[str], setting: str, rows: str = "batch", plain: str = "x plain"
) -> str:
    """The per-token costs of ``names`` as a markdown table, batches 1 and 4, against ``"plain"``;
    ``setting`` describes the decoding ("greedy", "4 beams")."""
    lines = [
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} "
        f"threads, {str(model.dtype).replace('torch.', '')}, {setting}, {NEW_TOKENS} new tokens",
        f"| {rows} | run | decode ms/token | {plain} |",
        "|---|---|---|---|",
    ]
    for batch in (1, 4):
        base = step_cost(results, "plain", batch)
        for name in names:
            cost = step_cost(results, name, batch)
            lines.append(f"| {batch} | {name} | {cost * 1e3:.1f} | {cost / base:.2f} |")
    return "\n".join(lines)


def record(benchmark, fn: Callable, results: Results, key: tuple[str, int, int], rounds: int, group: str):
    """Time ``fn`` under pytest-benchmark (its best round kept in ``results[key]``)."""
    name, batch, new_tokens = key
    benchmark.group = f"{group}, batch {batch}, {new_tokens} new token(s)"
    benchmark.extra_info.update(run=name, batch=batch, new_tokens=new_tokens)
    with torch.no_grad():
        benchmark.pedantic(fn, rounds=rounds if new_tokens > 1 else rounds + 2, iterations=1, warmup_rounds=1)
    results[key] = benchmark.stats.stats.min


def measure(run_fn: Callable, subject, names: list[str], results: Results, rounds: int) -> None:
    """The same measurements without pytest-benchmark: ``run_fn(subject, name, batch, new_tokens)``."""
    with torch.no_grad():
        for batch in (1, 4):
            for name in names:
                for new_tokens in (1, NEW_TOKENS):
                    fn = run_fn(subject, name, batch, new_tokens)
                    fn()
                    best = float("inf")
                    for _ in range(rounds):
                        start = time.perf_counter()
                        fn()
                        best = min(best, time.perf_counter() - start)
                    results[(name, batch, new_tokens)] = best


def retime(
    run_fn: Callable, subject, names: list[str], batch: int, results: Results, rounds: int = 3
) -> None:
    """Time ``names`` again, alternating between them, and keep each run's best time: a second look
    before a ratio fails, on a machine whose speed drifts by ±10 % from one minute to the next."""
    fns = {(name, t): run_fn(subject, name, batch, t) for name in names for t in (1, NEW_TOKENS)}
    with torch.no_grad():
        for _ in range(rounds):
            for (name, new_tokens), fn in fns.items():
                start = time.perf_counter()
                fn()
                key = (name, batch, new_tokens)
                results[key] = min(results[key], time.perf_counter() - start)
