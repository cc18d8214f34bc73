"""The two combinations, by hand."""

from __future__ import annotations

import math

import torch

from halluguard.decoders.contrast import contrast, m3id


def test_contrast_formula_and_plausibility_cutoff():
    scores = torch.tensor([[math.log(0.6), math.log(0.3), math.log(0.05), math.log(0.05)]])
    other = torch.tensor([[0.0, -1.0, 2.0, -4.0]])
    out = contrast(scores, other, alpha=0.5, beta=0.1)
    expected = 1.5 * scores - 0.5 * other
    assert torch.allclose(out[0, :2], expected[0, :2])
    # p = 0.05 < 0.1 * 0.6: cut, however much the contrast would favour them
    assert torch.isinf(out[0, 2:]).all() and (out[0, 2:] < 0).all()
    assert torch.allclose(contrast(scores, other, alpha=0.5, beta=0.0), expected)


def test_contrast_keeps_earlier_minus_inf():
    scores = torch.tensor([[1.0, -math.inf, 0.5]])
    out = contrast(scores, torch.zeros(1, 3), alpha=1.0, beta=0.0)
    assert out[0, 1] == -math.inf and not torch.isnan(out).any()


def test_m3id_weight_grows_and_gates_on_confidence():
    unsure = torch.tensor([[0.0, 0.0, 0.0]])  # top probability 1/3
    sure = torch.tensor([[10.0, 0.0, 0.0]])
    other = torch.tensor([[1.0, 0.0, -1.0]])
    lam, t = 0.02, 10
    weight = (1 - math.exp(-lam * t)) / math.exp(-lam * t)
    out = m3id(unsure, other, step=t, lam=lam, alpha=0.5)
    assert torch.allclose(out, unsure + weight * (unsure - other))
    assert torch.equal(m3id(sure, other, step=t, lam=lam, alpha=0.5), sure)  # confident: untouched
    assert torch.equal(m3id(unsure, other, step=0, lam=lam, alpha=0.5), unsure)  # g_0 = 1
    later = m3id(unsure, other, step=50, lam=lam, alpha=0.5)
    assert (later - unsure).abs().sum() > (out - unsure).abs().sum()
