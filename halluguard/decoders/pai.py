"""PAI: Paying More Attention to Image (Liu et al., ECCV 2024, arXiv 2407.21771).

Two parts, each with its own switch (reference: github.com/LALBJ/PAI):

- **attention**: in decoder blocks ``start_layer`` to ``end_layer`` (exclusive), the newest token's
  attention logits on the image tokens, after the mask and before the softmax, become
  ``w + alpha * |w|`` (``attention.py`` L90-94: ``attn_weights[:, :, -1, img_start:img_end] =
  attn_weights[..., img].abs() * alpha + attn_weights[..., img]``), every head, every row. The newest
  token is the query of each decoding step, and in the prompt's forward its last token, as in the
  reference's cached decoding. ``alpha=0`` switches it off.
- **image-free guidance** (``CFG.py`` L28-58): with ``l_c`` and ``l_u`` the log-softmax of the logits
  with and without the image (the prompt with the image tokens removed, VDD's branch, which it
  reuses: its own cache, fused into the main forward where it can be),
  ``gamma * (l_c - l_u) + l_u`` on the tokens with ``l_c >= max l_c + log 0.1``, -inf elsewhere. The
  image-free branch is decoded without the attention edit (the reference's ``use_cfg`` flag).
  ``gamma=1`` switches it off.

Defaults are the reference README's commands (``--use-attn --alpha 0.2 --use-cfg --gamma 1.1``,
``start_layer=2``, ``end_layer=32`` of LLaVA-1.5's 32 blocks: here ``None``, the last block).
``alpha=0, gamma=1`` is exactly plain ``generate``. One difference from the reference, on purpose:
with guidance on, the reference skips the edit in the prompt's forward (``use_cfg`` starts True;
its issue #11), so its first token is unedited; here every token gets it, as with the edit alone.

The edit runs eager-style attention in the band's blocks (``attention.layer_attention``); the other
blocks keep their kernel. As a plain ``LogitsProcessor`` (``PAILogitsProcessor(model, inputs)``)
only the guidance applies; ``guard(model, "pai")`` applies both.

>>> PAILogitsProcessor(branch=object(), alpha=0, gamma=1).enabled
False
>>> PAILogitsProcessor(branch=object(), gamma=0.5)
Traceback (most recent call last):
...
ValueError: PAI needs alpha >= 0 and gamma >= 1, got alpha=0.2, gamma=0.5
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .attention import check_plain, eager_logits, eager_output
from .contrast import ContrastiveLogitsProcessor

#: The reference's plausibility cut: tokens below a tenth of the top probability are dropped.
CUTOFF = math.log(0.1)


def guidance(scores: torch.Tensor, other: torch.Tensor, gamma: float) -> torch.Tensor:
    """PAI's image-free guidance (see the module); ``gamma == 1`` returns ``scores`` itself.

    >>> guidance(torch.tensor([[0.0, -1.0, -9.0]]), torch.tensor([[0.0, 0.0, 0.0]]), 2.0).argmax().item()
    0
    """
    if gamma == 1:
        return scores
    conditional = torch.log_softmax(scores, dim=-1)
    unconditional = torch.log_softmax(other.to(scores.dtype), dim=-1)
    out = gamma * (conditional - unconditional) + unconditional
    cutoff = CUTOFF + conditional.max(dim=-1, keepdim=True).values
    return out.masked_fill(conditional < cutoff, -math.inf)


class PAILogitsProcessor(ContrastiveLogitsProcessor):
    """PAI's parameters; as a ``LogitsProcessor``, its image-free guidance (the attention edit needs
    ``guard``)."""

    name = "pai"

    def __init__(
        self,
        model=None,
        inputs=None,
        *,
        alpha: float = 0.2,
        gamma: float = 1.1,
        start_layer: int = 2,
        end_layer: int | None = None,
        branch=None,
        renormalize: bool = False,
    ):
        if not (math.isfinite(alpha) and alpha >= 0 and math.isfinite(gamma) and gamma >= 1):
            raise ValueError(f"PAI needs alpha >= 0 and gamma >= 1, got alpha={alpha}, gamma={gamma}")
        if type(start_layer) is not int or start_layer < 0 or not (
            end_layer is None or (type(end_layer) is int and end_layer > start_layer)
        ):
            raise ValueError(
                "PAI needs 0 <= start_layer < end_layer (None: the last block), "
                f"got {start_layer}, {end_layer}"
            )
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.start_layer, self.end_layer = start_layer, end_layer
        super().__init__(model, inputs, branch=branch, renormalize=renormalize)

    @property
    def enabled(self) -> bool:
        """Whether the guidance runs (the second branch); :attr:`edits` says whether the attention does."""
        return self.gamma != 1

    @property
    def edits(self) -> bool:
        return self.alpha != 0

    def layers(self, count: int) -> range:
        """The edited blocks of a model with ``count`` decoder blocks."""
        end = count if self.end_layer is None else min(self.end_layer, count)
        return range(min(self.start_layer, end), end)

    def distort(self, family, model, inputs: dict) -> dict:
        return family.drop_image(model, inputs)

    def combine(self, scores, other, step):
        return guidance(scores, other, self.gamma)


class ImageAttention:
    """The attention edit of one call: an attention function for the band's blocks.

    ``columns``: bool ``(rows, width)``, the image's key columns of the main rows as generate expands
    them; in a forward of more rows (the guidance branch's stacked below them) the rest are left
    alone, and while ``suspended()`` (the branch's own forwards) nothing is edited.
    """

    def __init__(self, alpha: float, columns: torch.Tensor, suspended: Callable[[], bool] = lambda: False):
        self.alpha, self.columns, self.suspended = alpha, columns, suspended

    def __call__(self, module, query, key, value, attention_mask, scaling=None, softcap=None, **kwargs):
        check_plain("PAI", kwargs)
        logits = eager_logits(module, query, key, attention_mask, scaling=scaling, softcap=softcap)
        rows, width = self.columns.shape
        if not self.suspended():
            keys = logits.shape[-1]
            if keys < width or logits.shape[0] < rows:
                from .guarded import GuardError

                raise GuardError(
                    f"PAI: a forward of {logits.shape[0]} rows and {keys} keys does not extend the prompt's "
                    f"{rows} rows of {width} columns; the image columns cannot be placed"
                )
            image = torch.nn.functional.pad(self.columns, (0, keys - width))[:, None]  # (rows, 1, keys)
            newest = logits[:rows, :, -1]
            logits[:rows, :, -1] = torch.where(image, newest + self.alpha * newest.abs(), newest)
        return eager_output(query, value, logits)
