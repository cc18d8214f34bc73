"""VAF: visual amplification fusion (Yin et al., "ClearSight", CVPR 2025; github.com/ustc-hyin/ClearSight).

In a band of middle decoder blocks, the attention logits (``q k^T / sqrt(d)``, before the mask and
the softmax) of every query after the image are multiplied by ``enh_para`` on the image's key
columns and by ``sup_para`` on the system prompt's (every column before the image), all heads
(``visaug/inference/AttnAdapter.py`` L70-79). The prompt's question tokens are queries after the
image too, so the prompt's own forward is edited, as in the reference; every decoded token is.
No second forward and no change to the logits: one pass, eager-style attention in the band only
(``attention.layer_attention``), the other blocks keep their kernel.

Defaults: the reference's script (``infer_pope.sh``: ``--enh-para 1.15 --sup-para 0.95``) and its
blocks 9-14 of LLaVA-1.5's 32 (``infer_pope.py`` L52-58: ``i > 8 and i < 15``): ``start_layer`` and
``end_layer`` (exclusive) default to the same share of any model's depth. The reference hard-codes
the system prompt as 35 columns and the image as 576; here both come from the family's image block
and the attention mask. ``enh_para=1, sup_para=1`` is exactly plain ``generate``.

>>> VAF().layers(32), VAF().layers(4), VAF(start_layer=2, end_layer=3).layers(4)
(range(9, 15), range(1, 2), range(2, 3))
>>> VAF(enh_para=1, sup_para=1).enabled
False
"""

from __future__ import annotations

import math

import torch

from .attention import check_plain, eager_output, edit_blocks, expanded_rows, masked, raw_logits

#: The reference's band in LLaVA-1.5's 32 blocks: 9 to 14.
BAND = (9, 15, 32)


class VAF:
    """VAF's parameters, with the reference's names and defaults, validated on construction."""

    name = "vaf"

    def __init__(
        self,
        enh_para: float = 1.15,
        sup_para: float = 0.95,
        start_layer: int | None = None,
        end_layer: int | None = None,
    ):
        for label, value in (("enh_para", enh_para), ("sup_para", sup_para)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"VAF: {label} must be a finite number >= 0, got {value!r}")
        for label, value in (("start_layer", start_layer), ("end_layer", end_layer)):
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"VAF: {label} must be None or an integer >= 0, got {value!r}")
        if start_layer is not None and end_layer is not None and end_layer <= start_layer:
            raise ValueError(f"VAF needs start_layer < end_layer, got {start_layer}, {end_layer}")
        self.enh_para, self.sup_para = float(enh_para), float(sup_para)
        self.start_layer, self.end_layer = start_layer, end_layer

    @property
    def enabled(self) -> bool:
        return self.enh_para != 1 or self.sup_para != 1

    def layers(self, count: int) -> range:
        """The edited blocks of a model with ``count`` decoder blocks."""
        start = round(BAND[0] * count / BAND[2]) if self.start_layer is None else self.start_layer
        end = round(BAND[1] * count / BAND[2]) if self.end_layer is None else self.end_layer
        end = min(max(end, start + 1), count)
        return range(min(start, end), end)

    def intervention(self, target, family, model, inputs: dict, config):
        """The band's attention edited on ``target`` for one ``generate`` call (``guarded._in_loop``)."""
        edit = VisualAmplification.for_inputs(self, family, model, inputs, expanded_rows(config))
        return edit_blocks(target, self.layers, edit)


class VisualAmplification:
    """VAF's attention function for one call (see the module).

    ``image``: bool ``(rows, width)``, the image's key columns of each row as generate expands them;
    ``mask``: the prompt's attention mask (padding is not system prompt).
    """

    def __init__(self, method: VAF, image: torch.Tensor, mask: torch.Tensor | None):
        rows, width = image.shape
        columns = torch.arange(width, device=image.device)
        first = torch.where(image, columns, width).amin(-1, keepdim=True)
        last = torch.where(image, columns, -1).amax(-1)
        seen = torch.ones_like(image) if mask is None else mask.bool()
        factor = torch.ones(rows, width, dtype=torch.float32, device=image.device)
        factor[(columns < first) & seen & image.any(-1, keepdim=True)] = method.sup_para
        factor[image] = method.enh_para
        self.factor = factor  # (rows, width): the prompt's columns' factors
        self.after = torch.where(image.any(-1), last + 1, torch.iinfo(torch.long).max)  # first edited query

    @classmethod
    def for_inputs(cls, method: VAF, family, model, inputs: dict, expand: int) -> VisualAmplification:
        """The edit of a ``generate`` call on ``inputs`` that decodes ``expand`` rows per prompt."""
        image = family.image_block(model, inputs["input_ids"]).repeat_interleave(expand, dim=0)
        mask = inputs.get("attention_mask")
        return cls(method, image, None if mask is None else mask.repeat_interleave(expand, dim=0))

    def __call__(self, module, query, key, value, attention_mask, scaling=None, softcap=None, **kwargs):
        check_plain("VAF", kwargs)
        logits = raw_logits(query, key, scaling, softcap)
        rows, width = self.factor.shape
        if logits.shape[0] != rows or logits.shape[-1] < width:
            from .guarded import GuardError

            raise GuardError(
                f"VAF: a forward of {logits.shape[0]} rows and {logits.shape[-1]} keys does not extend the "
                f"prompt's {rows} rows of {width} columns"
            )
        keys, queries = logits.shape[-1], logits.shape[-2]
        positions = torch.arange(keys - queries, keys, device=logits.device)
        edited = positions[None, :] >= self.after[:, None]  # (rows, queries)
        factor = torch.nn.functional.pad(self.factor, (0, keys - width), value=1.0)
        factor = torch.where(edited[:, :, None], factor[:, None, :], 1.0)  # (rows, queries, keys)
        return eager_output(query, value, masked(logits * factor[:, None], attention_mask, query))
