"""Per-layer attention functions for the length of one call, through transformers' ``AttentionInterface``.

OPERA reads the last layer's attention weights; PAI and VAF edit the attention logits of a band of
layers. All need eager-style attention in a few layers only. :func:`layer_attention` gives chosen
decoder blocks their own attention function for a ``with`` block; every other block runs SDPA (also
for a model loaded with flash kernels), or the family's eager function for a model loaded in eager
attention. The language model's implementation becomes :data:`LAYERED` or :data:`LAYERED_SDPA`
(public ``set_attn_implementation``), whose function looks up the block's function on its attention
module. Afterwards (also on error) the implementation and the modules are as they were; nothing
outlives the call.

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
from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

from . import compat
from .readout import TextStack

#: The attention implementations the language model runs under :func:`layer_attention`: for a model in
#: eager attention (additive float masks) and for one with a kernel (SDPA's masks: boolean, or none
#: where the causal kernel needs none, so the blocks left alone run as fast as before).
LAYERED = "halluguard_layered"
LAYERED_SDPA = "halluguard_layered_sdpa"
#: The attribute, on a block's attention module, that holds its function for the call.
FUNCTION = "_halluguard_attention"


def _dispatch(module, query, key, value, attention_mask, **kwargs):
    function = getattr(module, FUNCTION, None) or sdpa_attention_forward
    return function(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(LAYERED, _dispatch)
AttentionMaskInterface.register(LAYERED, eager_mask)
AttentionInterface.register(LAYERED_SDPA, _dispatch)
AttentionMaskInterface.register(LAYERED_SDPA, sdpa_mask)


@contextmanager
def layer_attention(target, functions: dict[int, Callable]):
    """``target``'s decoder blocks ``i`` run ``functions[i]`` as their attention within the block.

    A function takes what transformers' attention functions take (``module, query, key, value,
    attention_mask, **kwargs``; the mask additive, boolean or None: see :func:`additive_mask`) and
    returns ``(output, weights or None)``.
    """
    text = target.config.get_text_config()
    original = compat.attn_implementation(text)
    modules = [block.self_attn for block in TextStack.of(target).blocks]
    for index, module in enumerate(modules):
        own = compat.eager_attention(module) if original == "eager" else sdpa_attention_forward
        setattr(module, FUNCTION, functions.get(index, own))
    names = getattr(target.config, "sub_configs", {})
    key = next((name for name in names if getattr(target.config, name, None) is text), "")
    layered = LAYERED if original == "eager" else LAYERED_SDPA
    try:
        target.set_attn_implementation({key: layered} if key else layered)
        yield
    finally:
        target.set_attn_implementation({key: original} if key else original)
        for module in modules:
            delattr(module, FUNCTION)


def check_plain(method: str, kwargs: dict) -> None:
    """Refuse attention features an edit does not reproduce (sinks: ``s_aux``)."""
    if kwargs.get("s_aux") is not None:
        from .guarded import GuardError

        raise GuardError(f"{method}: attention with sinks (s_aux) is not supported")


def edit_blocks(target, layers: Callable[[int], range], function: Callable):
    """:func:`layer_attention` with ``function`` in the blocks ``layers(number of blocks)`` chooses."""
    count = len(TextStack.of(target).blocks)
    return layer_attention(target, {index: function for index in layers(count)})


def expanded_rows(config) -> int:
    """How many rows ``generate`` decodes per prompt with ``config`` (beams or returned sequences)."""
    return max(config.num_beams or 1, config.num_return_sequences or 1)


def additive_mask(attention_mask, query, keys: int, dtype) -> torch.Tensor | None:
    """The mask as eager attention adds it: 0 where a key is seen, the dtype's minimum elsewhere. A
    boolean mask is converted; no mask (SDPA's causal fast path) means causal over the newest
    ``queries`` positions, or nothing to mask for a single query."""
    if attention_mask is None:
        queries = query.shape[-2]
        if queries == 1:
            return None
        seen = torch.ones(queries, keys, dtype=torch.bool, device=query.device).tril(keys - queries)
        return additive_mask(seen[None, None], query, keys, dtype)
    mask = attention_mask[:, :, :, :keys]
    if mask.dtype == torch.bool:
        blocked = torch.finfo(dtype).min
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, blocked)
    return mask


def as_eager(function: Callable) -> Callable:
    """``function``, an eager attention that adds its mask, given the mask :func:`additive_mask` makes."""

    def attention(module, query, key, value, attention_mask, **kwargs):
        mask = additive_mask(attention_mask, query, key.shape[-2], query.dtype)
        return function(module, query, key, value, mask, **kwargs)

    return attention


def raw_logits(query, key, scaling=None, softcap=None) -> torch.Tensor:
    """``q k^T * scaling`` in float32 (as SDPA and flash kernels accumulate; on a CPU without native
    bfloat16 also the fastest way), keys repeated for grouped-query heads, soft-capped where the
    family caps them: the attention logits before the mask."""
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1) if groups > 1 else key
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    logits = torch.matmul(query.float(), key.float().transpose(2, 3)) * scaling
    return logits if softcap is None else torch.tanh(logits / softcap) * softcap


def masked(logits, attention_mask, query) -> torch.Tensor:
    """``logits`` plus the mask (:func:`additive_mask`)."""
    mask = additive_mask(attention_mask, query, logits.shape[-1], logits.dtype)
    return logits if mask is None else logits + mask


def eager_logits(module, query, key, attention_mask, scaling=None, softcap=None) -> torch.Tensor:
    """The attention logits an eager attention computes before its softmax (:func:`raw_logits`
    with the mask added), in float32."""
    return masked(raw_logits(query, key, scaling, softcap), attention_mask, query)


def eager_output(query, value, logits) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax and the weighted values in float32, returned in the query's dtype as ``(batch, queries,
    heads, dim)``, with the weights."""
    groups = query.shape[1] // value.shape[1]
    value = value.repeat_interleave(groups, dim=1) if groups > 1 else value
    weights = torch.softmax(logits.float(), dim=-1)
    output = torch.matmul(weights, value.float()).to(query.dtype)
    return output.transpose(1, 2).contiguous(), weights.to(query.dtype)
