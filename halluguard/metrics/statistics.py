"""Honest uncertainty: bootstrap intervals, paired bootstrap tests and McNemar's test.

Every rate halluguard reports is a *ratio of sums* over items (captions, questions, answers):
CHAIR_i = hallucinated mentions / mentions, precision = TP / predicted yes, F1 = 2TP / (2TP + FP + FN),
accuracy = correct / questions. So one routine serves them all: each item contributes a numerator and a
denominator, and a bootstrap resample draws items (not words) with replacement, which keeps the
correlation between words of one caption.

- Intervals: percentile bootstrap, ``n_resamples`` = 1000 by default, 95 % (``level`` = 0.95), drawn from
  an explicit ``numpy.random.Generator`` seeded by ``seed`` (default 0), so reports are reproducible.
- Paired bootstrap (two runs on the same items): resample item indices once and apply them to both
  runs; the interval of the difference B - A is the percentile interval, and the two-sided p-value is
  the share of resampled differences at least as far from the observed difference as the observed
  difference is from 0 (the null-shifted bootstrap of Efron & Tibshirani 1993, section 16.4), computed
  as ``(1 + count) / (1 + n_resamples)`` so it is never exactly 0.
- McNemar's test (two runs answering the same yes/no questions): the exact two-sided binomial test on
  the discordant pairs (b: only A right, c: only B right), ``p = min(1, 2 * P[X <= min(b, c)])`` with
  ``X ~ Binomial(b + c, 1/2)``; exact at every sample size, so no continuity correction is needed.

>>> import numpy as np
>>> lo, hi = bootstrap_ratio(np.array([1, 0, 1, 1]), np.ones(4), n_resamples=200, seed=0)
>>> 0.0 <= lo <= 0.75 <= hi <= 1.0
True
>>> round(mcnemar_exact(10, 2), 4)
0.0386
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

N_RESAMPLES = 1000
LEVEL = 0.95
SEED = 0
_CHUNK_CELLS = 2_000_000  # resample indices held in memory at once


def ratio(num: Any, den: Any) -> float:
    """``sum(num) / sum(den)``, NaN when the denominator is 0."""
    d = float(sum(den))
    return float(sum(num)) / d if d else float("nan")


def _resample_sums(arrays: Sequence[Any], n: int, n_resamples: int, seed: int):
    """Yield, chunk by chunk, the per-resample sums of each array under shared item resampling."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    chunk = max(1, min(n_resamples, _CHUNK_CELLS // max(n, 1)))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(size, n))
        yield [a[idx].sum(axis=1) for a in arrays]
        done += size


def _percentiles(values: Any, level: float) -> tuple[float, float]:
    import numpy as np

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def bootstrap_ratios(
    parts: Mapping[str, tuple[Any, Any]],
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of several ratio-of-sums statistics over the same items.

    ``parts`` maps a name to ``(numerators, denominators)``, one entry per item; all share the same
    resamples (so intervals of one run are computed from one set of draws).

    >>> import numpy as np
    >>> ci = bootstrap_ratios({"rate": (np.array([1, 0, 0, 1]), np.ones(4))}, n_resamples=100)
    >>> ci["rate"][0] <= 0.5 <= ci["rate"][1]
    True
    """
    import numpy as np

    names = list(parts)
    if not names:
        return {}
    n = len(parts[names[0]][0])
    if n == 0:
        return {k: (float("nan"), float("nan")) for k in names}
    arrays = [a for k in names for a in parts[k]]
    stats: dict[str, list[Any]] = {k: [] for k in names}
    with np.errstate(invalid="ignore", divide="ignore"):
        for sums in _resample_sums(arrays, n, n_resamples, seed):
            for i, k in enumerate(names):
                num, den = sums[2 * i], sums[2 * i + 1]
                stats[k].append(np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))
    return {k: _percentiles(np.concatenate(v), level) for k, v in stats.items()}


def bootstrap_ratio(
    num: Any, den: Any, *, n_resamples: int = N_RESAMPLES, seed: int = SEED, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``sum(num) / sum(den)``, resampling items."""
    return bootstrap_ratios({"r": (num, den)}, n_resamples=n_resamples, seed=seed, level=level)["r"]


def paired_bootstrap(
    a: tuple[Any, Any],
    b: tuple[Any, Any],
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Any]:
    """Compare ratio ``b`` with ratio ``a`` on the same items (aligned arrays).

    Returns ``diff`` (b - a), ``diff_ci`` and the two-sided ``p`` (see the module docstring).

    >>> import numpy as np
    >>> before = (np.array([1] * 30 + [0] * 10), np.ones(40))
    >>> after = (np.array([1] * 12 + [0] * 28), np.ones(40))
    >>> out = paired_bootstrap(before, after, n_resamples=500)
    >>> round(out["diff"], 2), out["p"] < 0.01
    (-0.45, True)
    """
    import numpy as np

    n = len(a[0])
    if n != len(b[0]):
        raise ValueError(f"paired_bootstrap needs aligned items: {n} vs {len(b[0])}")
    observed = ratio(*b) - ratio(*a)
    if n == 0 or math.isnan(observed):
        return {"diff": observed, "diff_ci": [float("nan"), float("nan")], "p": float("nan"), "n": n}
    diffs = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for na, da, nb, db in _resample_sums([a[0], a[1], b[0], b[1]], n, n_resamples, seed):
            ra = np.where(da > 0, na / np.where(da > 0, da, 1), np.nan)
            rb = np.where(db > 0, nb / np.where(db > 0, db, 1), np.nan)
            diffs.append(rb - ra)
    d = np.concatenate(diffs)
    d = d[~np.isnan(d)]
    lo, hi = _percentiles(d, level)
    extreme = int(np.sum(np.abs(d - observed) >= abs(observed) - 1e-12))
    p = min(1.0, (1 + extreme) / (1 + d.size))
    return {"diff": observed, "diff_ci": [lo, hi], "p": p, "n": n}


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts ``b`` and ``c``.

    >>> mcnemar_exact(0, 0), round(mcnemar_exact(5, 5), 3)
    (1.0, 1.0)
    """
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    log_half = n * math.log(0.5)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half for i in range(k + 1)
    ]
    top = max(terms)
    tail = math.exp(top) * sum(math.exp(t - top) for t in terms)
    return min(1.0, 2.0 * tail)


def mcnemar(correct_a: Sequence[Any], correct_b: Sequence[Any]) -> dict[str, Any]:
    """McNemar's test on two aligned sequences of per-question correctness (truthy = right).

    >>> mcnemar([1, 1, 1, 0], [1, 0, 0, 0])["b"], mcnemar([1, 1, 1, 0], [1, 0, 0, 0])["c"]
    (2, 0)
    """
    if len(correct_a) != len(correct_b):
        raise ValueError(f"mcnemar needs aligned items: {len(correct_a)} vs {len(correct_b)}")
    b = sum(1 for x, y in zip(correct_a, correct_b) if x and not y)
    c = sum(1 for x, y in zip(correct_a, correct_b) if y and not x)
    return {"b": b, "c": c, "p": mcnemar_exact(b, c), "n": len(correct_a)}
