"""Bootstrap intervals, paired bootstrap and McNemar's test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from halluguard.metrics import statistics as S


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(123)
    num = (rng.random(400) < 0.3).astype(float)
    den = np.ones(400)
    a = S.bootstrap_ratio(num, den, n_resamples=500, seed=7)
    assert a == S.bootstrap_ratio(num, den, n_resamples=500, seed=7)
    assert a != S.bootstrap_ratio(num, den, n_resamples=500, seed=8)
    estimate = num.mean()
    assert a[0] < estimate < a[1]
    # roughly the normal-approximation interval of a proportion
    half = 1.96 * math.sqrt(estimate * (1 - estimate) / 400)
    assert a[1] - a[0] == pytest.approx(2 * half, rel=0.2)


def test_ratio_of_sums_resamples_items_not_words():
    # 2 items: one with 10 mentions all hallucinated, one with 10 clean: the rate is 50 % either way,
    # but resampling items can give 0 % or 100 %.
    lo, hi = S.bootstrap_ratio(np.array([10, 0]), np.array([10, 10]), n_resamples=400)
    assert lo == 0.0 and hi == 1.0


def test_bootstrap_ratios_share_resamples_and_handle_empty():
    parts = {"a": ([1, 0, 1], [1, 1, 1]), "b": ([0, 0, 0], [0, 0, 0])}
    ci = S.bootstrap_ratios(parts, n_resamples=100)
    assert 0 <= ci["a"][0] <= ci["a"][1] <= 1
    assert all(math.isnan(x) for x in ci["b"])
    assert all(math.isnan(x) for x in S.bootstrap_ratios({"c": ([], [])})["c"])


def test_paired_bootstrap():
    same = (np.array([1, 0, 1, 1, 0] * 20), np.ones(100))
    out = S.paired_bootstrap(same, same, n_resamples=300)
    assert out["diff"] == 0.0 and out["p"] == 1.0 and out["diff_ci"] == [0.0, 0.0]
    better = (np.array([0, 0, 1, 0, 0] * 20), np.ones(100))
    out = S.paired_bootstrap(same, better, n_resamples=300)
    assert out["diff"] == pytest.approx(-0.4)
    assert out["p"] < 0.01 and out["diff_ci"][1] < 0
    with pytest.raises(ValueError):
        S.paired_bootstrap(same, (np.ones(3), np.ones(3)))


def test_mcnemar_exact_by_hand():
    # P(X <= 2 | n=12, 1/2) = (1 + 12 + 66) / 4096
    assert S.mcnemar_exact(10, 2) == pytest.approx(2 * 79 / 4096)
    assert S.mcnemar_exact(2, 10) == S.mcnemar_exact(10, 2)
    assert S.mcnemar_exact(0, 0) == 1.0 and S.mcnemar_exact(3, 3) == 1.0
    assert S.mcnemar_exact(0, 400) < 1e-100
    out = S.mcnemar([1, 1, 0, 0, 1], [1, 0, 1, 0, 0])
    assert (out["b"], out["c"], out["n"]) == (2, 1, 5)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert S.mcnemar_exact(37, 21) == pytest.approx(scipy_stats.binomtest(21, 58, 0.5).pvalue)
