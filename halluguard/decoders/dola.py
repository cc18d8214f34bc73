"""DoLa: contrast the final layer with the premature layer that differs most (Chuang et al., ICLR 2024).

Per step and row (transformers <= 4.52 ``generation/utils.py``: ``_dola_decoding``,
``_dola_select_contrast``, ``_relative_top_filter``; the Hub's ``transformers-community/dola``):

1. early exits ``lm_head(h_l)`` of the candidate layers (no final norm, as there and in voidism/DoLa's
   ``modeling_llama.py``: ``logits = self.lm_head(outputs.hidden_states[early_exit_layer])``);
2. the premature layer: the candidate with the largest Jensen-Shannon divergence from the final
   distribution, computed as there (``F.kl_div(...).mean(-1)``: KL averaged over the vocabulary);
3. ``log p_final - log p_premature`` on the tokens with ``p_final >= relative_top * max p_final``;
   the others get ``-inf``.

Candidate layers: ``dola_layers="low"`` or ``"high"`` (``range(start, N // 2, 2)`` and
``range(N // 2, N, 2)`` for ``N <= 40`` blocks, ``range(start, 20, 2)`` and ``range(N - 20, N, 2)``
above; ``start`` skips the embedding exit when the LM head is tied to the embeddings), or a list of
layer indices. ``dola_layers=[]`` turns DoLa off (plain decoding).

Differences from transformers' DoLa, both only where it has no answer: the premature layer is chosen
per row (transformers averages the divergence over the batch, so a prompt's answer depended on its
batch-mates; at batch 1 the two agree), and beam search is allowed (beams rank by the contrast's
log-softmax, as the original DoLa's ``lm_score(post_softmax=True)``). The DoLa authors recommend
``repetition_penalty=1.2`` with it; pass it to ``generate`` as usual.

>>> import torch
>>> DoLa("low").layers(32, tied=False), DoLa("high").layers(32, tied=False)[:3]
([0, 2, 4, 6, 8, 10, 12, 14], [16, 18, 20])
>>> final = torch.tensor([[3.0, 2.0, -5.0]])
>>> DoLa([1]).correct(final, {1: torch.tensor([[3.0, 0.0, 0.0]])}).tolist()[0][2]
-inf
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .readout import ReadoutMethod


class DoLa(ReadoutMethod):
    """DoLa's contrast; see the module."""

    name = "dola"
    norm = False

    def __init__(self, dola_layers: str | list[int] = "low", relative_top: float = 0.1):
        if isinstance(dola_layers, str):
            if dola_layers not in ("low", "high"):
                raise ValueError(
                    f"DOLA: dola_layers must be 'low', 'high' or a list of layers, got {dola_layers!r}"
                )
        elif not isinstance(dola_layers, (list, tuple)) or not all(isinstance(i, int) for i in dola_layers):
            raise ValueError(
                f"DOLA: dola_layers must be 'low', 'high' or a list of layers, got {dola_layers!r}"
            )
        if not 0 < relative_top <= 1:
            raise ValueError(f"DOLA: relative_top must be in (0, 1], got {relative_top}")
        self.dola_layers = dola_layers if isinstance(dola_layers, str) else list(dola_layers)
        self.relative_top = float(relative_top)

    @property
    def enabled(self) -> bool:
        return self.dola_layers != []

    def layers(self, n_layers: int, tied: bool) -> list[int]:
        if not isinstance(self.dola_layers, str):
            return [i for i in self.dola_layers if i < n_layers]
        start = 0 if not tied else 2 if n_layers > 2 else 1 if n_layers == 2 else 0
        if self.dola_layers == "low":
            if start == n_layers // 2:
                return [start]
            return list(range(start, n_layers // 2 if n_layers <= 40 else 20, 2))
        return list(
            range(n_layers // 2, n_layers, 2) if n_layers <= 40 else range(n_layers - 20, n_layers, 2)
        )

    def correct(self, final: torch.Tensor, exits: dict[int, torch.Tensor]) -> torch.Tensor:
        layers = list(exits)
        if len(layers) == 1:
            base = exits[layers[0]]
        else:
            stacked = torch.stack([exits[i] for i in layers])  # [layers, rows, vocab]
            log_final, log_early = F.log_softmax(final, -1)[None], F.log_softmax(stacked, -1)
            average = 0.5 * (F.softmax(final, -1)[None] + F.softmax(stacked, -1))
            kl_final = F.kl_div(log_final, average, reduction="none").mean(-1)
            kl_early = F.kl_div(log_early, average, reduction="none").mean(-1)
            chosen = (0.5 * (kl_final + kl_early)).argmax(0)  # [rows]: each row's premature layer
            base = stacked[chosen, torch.arange(final.shape[0], device=final.device)]
        return relative_top_contrast(final, base, self.relative_top)


def relative_top_contrast(final: torch.Tensor, base: torch.Tensor, relative_top: float) -> torch.Tensor:
    """``log_softmax(final) - log_softmax(base)`` where ``p_final >= relative_top * max``, else ``-inf``
    (``_relative_top_filter`` with ``min_tokens_to_keep=1``; the base's filtered entries are ``-1e-3``)."""
    log_final, log_base = final.log_softmax(-1), base.log_softmax(-1)
    top = log_final.max(-1, keepdim=True).values
    threshold = torch.minimum(top, top + math.log(relative_top))
    dropped = log_final < threshold
    return (log_final - log_base.masked_fill(dropped, -1e-3)).masked_fill(dropped, -math.inf)
