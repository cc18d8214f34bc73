"""Per-layer attention functions for the length of one call, through transformers' ``AttentionInterface``.

OPERA reads the last layer's attention weights; PAI edits the attention logits of a band of layers.
Both need eager-style attention in a few layers only. :func:`layer_attention` gives chosen decoder
blocks their own attention function for a ``with`` block and leaves every other block its own kernel
(SDPA, or the family's eager function when the model was loaded with eager attention): the language
model's implementation becomes :data:`LAYERED` (public ``set_attn_implementation``), whose function
looks up the block's function on its attention module. Afterwards (also on error) the implementation
and the modules are as they were; nothing outlives the call.

>>> from transformers import AttentionInterface
>>> LAYERED in AttentionInterface().valid_keys()
True
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from . import compat
from .readout import TextStack

#: The attention implementation the language model runs under :func:`layer_attention`. Its masks are
#: additive float masks, which the eager and the SDPA functions both take.
LAYERED = "halluguard_layered"
#: The attribute, on a block's attention module, that holds its function for the call.
FUNCTION = "_halluguard_attention"


def _dispatch(module, query, key, value, attention_mask, **kwargs):
    function = getattr(module, FUNCTION, None) or sdpa_attention_forward
    return function(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(LAYERED, _dispatch)
AttentionMaskInterface.register(LAYERED, eager_mask)


@contextmanager
def layer_attention(target, functions: dict[int, Callable]):
    """``target``'s decoder blocks ``i`` run ``functions[i]`` as their attention within the block.

    A function takes what transformers' attention functions take (``module, query, key, value,
    attention_mask, **kwargs``; the mask additive) and returns ``(output, weights or None)``.
    """
    text = target.config.get_text_config()
    original = compat.attn_implementation(text)
    modules = [block.self_attn for block in TextStack.of(target).blocks]
    for index, module in enumerate(modules):
        own = compat.eager_attention(module) if original == "eager" else sdpa_attention_forward
        setattr(module, FUNCTION, functions.get(index, own))
    names = getattr(target.config, "sub_configs", {})
    key = next((name for name in names if getattr(target.config, name, None) is text), "")
    try:
        target.set_attn_implementation({key: LAYERED} if key else LAYERED)
        yield
    finally:
        target.set_attn_implementation({key: original} if key else original)
        for module in modules:
            delattr(module, FUNCTION)


def eager_logits(module, query, key, attention_mask, scaling=None, softcap=None) -> torch.Tensor:
    """The attention logits an eager attention computes before its softmax: ``q k^T * scaling``
    (keys repeated for grouped-query heads), soft-capped where the family caps them, plus the mask."""
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1) if groups > 1 else key
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    logits = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    if attention_mask is not None:
        mask = attention_mask[:, :, :, : key.shape[-2]]
        if mask.dtype == torch.bool:
            blocked = torch.finfo(logits.dtype).min
            mask = torch.zeros(mask.shape, dtype=logits.dtype, device=mask.device).masked_fill(~mask, blocked)
        logits = logits + mask
    return logits


def eager_output(query, value, logits) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax (in float32, as transformers' eager functions) and the weighted values, ``(batch,
    queries, heads, dim)`` as attention functions return them, with the weights."""
    groups = query.shape[1] // value.shape[1]
    value = value.repeat_interleave(groups, dim=1) if groups > 1 else value
    weights = torch.softmax(logits, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights
