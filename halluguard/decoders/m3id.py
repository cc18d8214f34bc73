"""M3ID: Multi-Modal Mutual-Information Decoding (Favero et al., CVPR 2024).

As generation goes on, the image's influence fades ("conditioning dilution"); M3ID amplifies the
difference between the logits with the image (``l_c``) and without it (``l_u``), more and more as
``t`` grows, but only at steps where the model is unsure::

    g_t = exp(-lam * t)
    l   = l_c + 1[max softmax(l_c) < alpha] * (1 - g_t) / g_t * (l_c - l_u)

``t`` counts generated tokens from 0 (the first new token gets no correction). This is the form
MitigV implements (``src/mitigv/algorithms/m3id.py``): raw logits, gate on the top-1 probability.
The paper writes the same update on log-probabilities; the two differ by a constant per row, so
they give the same distribution (greedy and sampling agree), and only processors that are not
shift-invariant (e.g. a repetition penalty after this one) can tell them apart. The no-image
prompt is the one of VDD. Defaults (the paper's): ``lam=0.02``, ``alpha=0.3``.

The gate depends on the model's calibration: a confident model puts more than 0.3 on its top token at
almost every step, and M3ID with the paper's ``alpha`` then changes next to nothing (the lab's
captioner: a handful of 1,000 captions). ``alpha=1`` keeps the gate open and leaves ``lam`` as the
strength (on the lab, 0.02-0.1 help, 0.3 breaks the captions; benchmarks/RESULTS.md).

Example::

    m3id = M3IDLogitsProcessor(model, inputs, lam=0.02, alpha=0.3)
    out = model.generate(**inputs, logits_processor=[m3id], max_new_tokens=64)
"""

from __future__ import annotations

from .contrast import ContrastiveLogitsProcessor, m3id
from .vdd import VDDLogitsProcessor


class M3IDLogitsProcessor(ContrastiveLogitsProcessor):
    """M3ID as a ``transformers.LogitsProcessor``.

    Args:
        lam: forgetting rate ``lambda`` of ``g_t = exp(-lam * t)``; ``0`` turns the method off.
        alpha: the correction applies only when the top token's probability is below ``alpha``;
            ``0`` turns the method off.
    """

    name = "m3id"

    def __init__(
        self,
        model=None,
        inputs=None,
        *,
        lam: float = 0.02,
        alpha: float = 0.3,
        branch=None,
        renormalize: bool = False,
    ):
        if lam < 0 or not 0 <= alpha <= 1:
            raise ValueError(f"M3ID needs lam >= 0 and 0 <= alpha <= 1, got lam={lam}, alpha={alpha}")
        self.lam, self.alpha = float(lam), float(alpha)
        super().__init__(model, inputs, branch=branch, renormalize=renormalize)

    @property
    def enabled(self) -> bool:
        return self.lam != 0 and self.alpha != 0

    distort = VDDLogitsProcessor.distort  # the prompt without the image

    def combine(self, scores, other, step):
        return m3id(scores, other, step, self.lam, self.alpha)
