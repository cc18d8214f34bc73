"""The shared contrast: combine the scores of the original input with a second branch's logits.

Two combinations cover the four methods:

- ``contrast`` (VCD, ICD, VDD)::

      out = (1 + alpha) * l - alpha * l'      where p(token) >= beta * max p, else -inf

  with the adaptive plausibility constraint computed on the original scores ``l`` (VCD's
  ``vcd_sample.py``: ``cutoff = log(beta) + max(l)``, tokens with ``l < cutoff`` are dropped).
- ``m3id``::

      out = l + 1[max softmax(l) < alpha] * (1 - g_t) / g_t * (l - l_u),   g_t = exp(-lam * t)

>>> import torch
>>> l = torch.tensor([[2.0, 1.0, -3.0]])
>>> contrast(l, torch.tensor([[2.0, 0.0, 0.0]]), alpha=1.0, beta=0.1).tolist()
[[2.0, 2.0, -inf]]
>>> contrast(l, torch.zeros(1, 3), alpha=0.0, beta=0.1) is l
True
>>> m3id(l, torch.zeros(1, 3), step=0, lam=0.02, alpha=0.3) is l  # g_0 = 1: no correction yet
True
"""

from __future__ import annotations

import math

import torch
from transformers import LogitsProcessor

from .branch import SequentialBranch
from .families import family_of


def contrast(scores: torch.Tensor, other: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """VCD's contrast with its adaptive plausibility constraint; ``alpha == 0`` returns ``scores`` itself."""
    if alpha == 0:
        return scores
    combined = (1 + alpha) * scores - alpha * other.to(scores.dtype)
    if beta > 0:
        cutoff = math.log(beta) + scores.max(dim=-1, keepdim=True).values
        combined = combined.masked_fill(scores < cutoff, -float("inf"))
    return combined


def m3id(
    scores: torch.Tensor, unconditioned: torch.Tensor, step: int, lam: float, alpha: float
) -> torch.Tensor:
    """M3ID's correction at generation step ``step`` (0 for the first new token)."""
    gamma = math.exp(-lam * step)
    weight = (1.0 - gamma) / gamma
    if weight == 0 or alpha <= 0:
        return scores
    uncertain = torch.softmax(scores, dim=-1).max(dim=-1, keepdim=True).values < alpha
    corrected = scores + weight * (scores - unconditioned.to(scores.dtype))
    return torch.where(uncertain, corrected, scores)


class ContrastiveLogitsProcessor(LogitsProcessor):
    """Base of the four methods: a ``LogitsProcessor`` that owns a second branch.

    Build it from the model and the inputs you give ``generate`` (the distorted copy is made
    here, and decoded alongside with its own cache); subclasses define ``distort`` and ``combine``.
    ``renormalize=True`` returns log-probabilities of the combined distribution, which beam search
    needs to rank beams by the contrastive distribution.
    """

    name = ""

    def __init__(self, model=None, inputs=None, *, branch=None, renormalize: bool = False):
        if branch is None:
            if model is None or inputs is None:
                raise TypeError(f"{type(self).__name__} needs the model and the inputs given to generate")
            family = family_of(model)
            target, branch_inputs = family.to_target(model, self.distort(family, model, dict(inputs)))
            branch = SequentialBranch(target, branch_inputs)
        self.branch = branch
        self.renormalize = renormalize
        self._start_length: int | None = None
        self._last_length: int | None = None

    @property
    def enabled(self) -> bool:
        """False when the parameters make the method a no-op (then the branch is not run)."""
        return True

    def distort(self, family, model, inputs: dict) -> dict:
        """The second branch's inputs, from the original ones."""
        raise NotImplementedError

    def combine(self, scores: torch.Tensor, other: torch.Tensor, step: int) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        length = input_ids.shape[1]
        if self._last_length is None or length <= self._last_length:
            self._start_length = length
        self._last_length = length
        if not self.enabled:
            return scores
        other = self.branch.logits(input_ids)
        out = self.combine(scores, other, length - self._start_length)
        if self.renormalize:
            out = torch.log_softmax(out, dim=-1)
        return out


class PlainContrast(ContrastiveLogitsProcessor):
    """Base of VCD, ICD and VDD: :func:`contrast` of the two branches with ``alpha`` and ``beta``;
    ``alpha=0`` turns the method off."""

    def _set_strength(self, alpha: float, beta: float) -> None:
        if alpha < 0 or not 0 <= beta <= 1:
            raise ValueError(
                f"{self.name.upper()} needs alpha >= 0 and 0 <= beta <= 1, got alpha={alpha}, beta={beta}"
            )
        self.alpha, self.beta = float(alpha), float(beta)

    @property
    def enabled(self) -> bool:
        return self.alpha != 0

    def combine(self, scores, other, step):
        return contrast(scores, other, self.alpha, self.beta)
