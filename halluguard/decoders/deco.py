"""DeCo: correct the final logits with the preceding layer most sure of a candidate (Wang et al., ICLR 2025).

"MLLM can see? Dynamic Correction Decoding for Hallucination Mitigation", zjunlp/Deco,
``transformers/generation/utils.py`` (``deco_greedy_search``, ``deco_sample_search``,
``deco_beam_search``) and ``models/llama/modeling_llama.py`` (early exits through the final norm:
``self.lm_head(self.model.norm(outputs.hidden_states[early_exit_layer]))``). Per step and row:

1. candidates: the final distribution's top ``threshold_top_k`` tokens, cut at cumulative probability
   ``threshold_top_p`` (``searchsorted(cumsum, top_p) + 1`` tokens, at most ``top_k``);
2. the anchor layer: among ``early_exit_layers``, the one whose softmax gives some candidate the
   highest probability ``p_max``;
3. ``logits + alpha * p_max * anchor_logits`` on the candidates, ``-inf`` elsewhere.

Defaults as in the repository's ``chair_llava.py`` for LLaVA-1.5-7B: ``alpha=0.6``,
``threshold_top_p=0.9``, ``threshold_top_k=20``, ``early_exit_layers`` 20..28 of 32 blocks; on other
depths ``early_exit_layers=None`` takes the same fractions of the depth (``round(5N/8)`` to
``round(7N/8)``). ``alpha=0`` turns DeCo off (plain decoding, without the candidate cut). The
reference's greedy and sampling paths run one row only; rows are corrected each on their own here,
as its beam search does.

>>> import torch
>>> DeCo().layers(32, tied=False) == list(range(20, 29)), DeCo().layers(4, tied=False)
(True, [2, 3])
>>> final = torch.tensor([[4.0, 1.0, 0.0]])
>>> DeCo(alpha=1.0, threshold_top_p=0.5).correct(final, {2: torch.tensor([[1.0, 2.0, 0.0]])}).tolist()
[[4.24..., -inf, -inf]]
"""

from __future__ import annotations

import math

import torch

from .readout import ReadoutMethod


class DeCo(ReadoutMethod):
    """DeCo's dynamic correction; see the module."""

    name = "deco"
    norm = True

    def __init__(
        self,
        alpha: float = 0.6,
        threshold_top_p: float = 0.9,
        threshold_top_k: int = 20,
        early_exit_layers: list[int] | None = None,
    ):
        if alpha < 0:
            raise ValueError(f"DECO: alpha must be >= 0, got {alpha}")
        if not 0 < threshold_top_p <= 1:
            raise ValueError(f"DECO: threshold_top_p must be in (0, 1], got {threshold_top_p}")
        if not isinstance(threshold_top_k, int) or threshold_top_k < 1:
            raise ValueError(f"DECO: threshold_top_k must be a positive integer, got {threshold_top_k!r}")
        if early_exit_layers is not None and (
            not isinstance(early_exit_layers, (list, tuple))
            or not early_exit_layers
            or not all(isinstance(i, int) for i in early_exit_layers)
        ):
            raise ValueError(
                f"DECO: early_exit_layers must be a non-empty list of layers, got {early_exit_layers!r}"
            )
        self.alpha = float(alpha)
        self.threshold_top_p = float(threshold_top_p)
        self.threshold_top_k = threshold_top_k
        self.early_exit_layers = None if early_exit_layers is None else list(early_exit_layers)

    @property
    def enabled(self) -> bool:
        return self.alpha != 0

    def layers(self, n_layers: int, tied: bool) -> list[int]:
        if self.early_exit_layers is not None:
            return self.early_exit_layers
        first, last = round(n_layers * 5 / 8), round(n_layers * 7 / 8)
        return list(range(min(first, n_layers - 1), min(last, n_layers - 1) + 1))

    def correct(self, final: torch.Tensor, exits: dict[int, torch.Tensor]) -> torch.Tensor:
        rows = torch.arange(final.shape[0], device=final.device)
        probs = final.softmax(-1)
        top_probs, top_ids = probs.topk(min(self.threshold_top_k, final.shape[-1]), dim=-1)
        cut = torch.searchsorted(
            top_probs.cumsum(-1), torch.full_like(top_probs[:, :1], self.threshold_top_p)
        )
        kept = torch.arange(top_ids.shape[1], device=final.device)[None] <= cut  # the first cut + 1
        stacked = torch.stack([exits[i] for i in exits])  # [layers, rows, vocab]
        early = stacked.softmax(-1).gather(-1, top_ids[None].expand(len(exits), -1, -1))  # [layers, rows, k]
        early = early.masked_fill(~kept[None], -1.0)
        best = early.permute(1, 0, 2).flatten(1).max(-1)  # each row's most confident (layer, candidate)
        anchor = stacked[torch.div(best.indices, top_ids.shape[1], rounding_mode="floor"), rows]
        corrected = final + self.alpha * best.values[:, None] * anchor
        candidates = torch.zeros_like(final, dtype=torch.bool).scatter(-1, top_ids, kept)
        return corrected.masked_fill(~candidates, -math.inf)
