"""The sequential execution's decoding steps, fused into the main forward.

A ``SequentialBranch`` needs one forward of the whole model per step; at small batch a forward is
bound by reading the weights, so a separate second forward nearly doubles the cost of a step.
``fused_steps(model, branch)`` runs the branch's step inside the forward ``generate`` makes anyway:
while the block runs, the model's ``forward`` joins the branch's rows (its own input token,
positions, mask and KV cache, left-padded to one length) to the main rows, hands ``generate`` the
main rows' output and its own cache, and keeps the branch's logits for the contrast processor,
which takes them instead of running a forward of its own. ``generate``'s loop is untouched:
sampling, streamers, stopping criteria, ``num_return_sequences`` and beam search (the branch's
rows follow the beams, as without fusion) work as before, and the tokens are the same.

The prefills stay separate (the main one in ``generate``, the branch's at the processor's first call).
A step that cannot be joined (a cache with other than plain attention layers, inputs the two
branches do not share, outputs asking for attentions or hidden states) runs two forwards, as
without fusion: the branch's, then the main one.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from .branch import SequentialBranch, preserved_state

#: model inputs of a decoding step that carry no rows (taken from the main call)
_SHARED = ("use_cache", "return_dict", "logits_to_keep")


@contextmanager
def fused_steps(model, branch: SequentialBranch):
    """Within the block, ``model``'s decoding steps also advance ``branch`` (see the module docstring)."""
    forward, prepare = model.forward, model.prepare_inputs_for_generation
    seen: dict[str, torch.Tensor] = {}

    @functools.wraps(prepare)  # generate reads the signatures of both to validate its arguments
    def capture(input_ids, *args, **kwargs):
        seen["ids"] = input_ids
        return prepare(input_ids, *args, **kwargs)

    @functools.wraps(forward)
    def joint_forward(*args, **kwargs):
        ids = seen.pop("ids", None)
        if args or ids is None or not branch.can_fuse(ids):
            return forward(*args, **kwargs)
        own = branch.fused_inputs(ids, prepare)
        joint = _join(kwargs, own, seen.pop("joint", None))
        if joint is None:  # the branch's step alone, then the main one
            with preserved_state(model):
                alone = forward(**{**own, "return_dict": True})
            branch.fused_outputs(ids, alone.logits, alone)
            return forward(*args, **kwargs)
        inputs, rows, pads = joint
        main_cache, branch_cache = kwargs["past_key_values"], own["past_key_values"]
        with preserved_state(model):
            out = forward(**inputs)
        seen["joint"] = _split(inputs["past_key_values"], main_cache, branch_cache, rows, pads)
        branch.fused_outputs(ids, out.logits[rows:], CausalLMOutputWithPast(past_key_values=branch_cache))
        out.logits = out.logits[:rows]
        out.past_key_values = main_cache
        return out

    # instance attributes, so that what was there before (accelerate's device hooks wrap ``forward``
    # this way) comes back afterwards
    saved = {name: model.__dict__[name] for name in ("forward", "prepare_inputs_for_generation") if name in model.__dict__}
    model.prepare_inputs_for_generation, model.forward = capture, joint_forward
    try:
        yield
    finally:
        del model.prepare_inputs_for_generation, model.forward
        for name, value in saved.items():
            setattr(model, name, value)


def _plain_layers(cache) -> bool:
    return isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)


def _join(main: dict, own: dict, last: tuple | None = None) -> tuple[dict, int, tuple[int, int]] | None:
    """``(inputs, rows, pads)`` of the joint step ``[main; branch]``, or None when the two steps cannot
    share a forward (``rows``: the main rows; ``pads``: each branch's left padding in the joint cache).

    ``last`` is what the previous joint step left (:func:`_split`): when both caches still hold its
    views (no beam reordered them), its joint cache is used again instead of padding both anew.
    """
    if main.get("output_attentions") or main.get("output_hidden_states"):
        return None
    main_cache, branch_cache = main.get("past_key_values"), own.get("past_key_values")
    if not (_plain_layers(main_cache) and _plain_layers(branch_cache)):
        return None
    if len(main_cache.layers) != len(branch_cache.layers) or not main_cache.layers:
        return None
    keys = {k for k, v in main.items() if v is not None} | {k for k, v in own.items() if v is not None}
    ids = (main.get("input_ids"), own.get("input_ids"))
    if not all(isinstance(t, torch.Tensor) and t.ndim == 2 and t.shape[1] == 1 for t in ids):
        return None
    rows = ids[0].shape[0]
    if ids[1].shape[0] != rows:
        return None
    past = (main_cache.get_seq_length(), branch_cache.get_seq_length())
    width = max(past)
    pads = (width - past[0], width - past[1])
    masks = [d.get("attention_mask") for d in (main, own)]
    if any(m is not None for m in masks) or pads != (0, 0):  # generate leaves out an all-ones mask
        keys.add("attention_mask")
        masks = [m if m is not None else torch.ones(rows, n + 1, dtype=torch.long, device=main["input_ids"].device)
                 for m, n in zip(masks, past)]
    inputs: dict[str, Any] = {k: main[k] for k in _SHARED if k in main}
    for key in keys - set(_SHARED) - {"past_key_values"}:
        a, b = (masks[0], masks[1]) if key == "attention_mask" else (main.get(key), own.get(key))
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return None
        if key == "attention_mask":
            if a.ndim != 2 or b.ndim != 2:
                return None
            inputs[key] = torch.cat([_left_pad(a, pads[0], 1), _left_pad(b, pads[1], 1)])
        elif key == "position_ids" and a.ndim == 3:  # Qwen's M-RoPE: (sections, rows, length)
            if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
                return None
            inputs[key] = torch.cat([a, b], dim=1)
        elif a.shape == b.shape and a.shape[0] == rows:
            inputs[key] = torch.cat([a, b])
        else:
            return None
    if last is not None and last[1] == pads and _same(last[2], _views(main_cache, branch_cache)):
        inputs["past_key_values"] = last[0]
        return inputs, rows, pads
    joint = DynamicCache()
    for index, (m, o) in enumerate(zip(main_cache.layers, branch_cache.layers)):
        joint.update(
            torch.cat([_left_pad(m.keys, pads[0], 2), _left_pad(o.keys, pads[1], 2)]),
            torch.cat([_left_pad(m.values, pads[0], 2), _left_pad(o.values, pads[1], 2)]),
            index,
        )
    inputs["past_key_values"] = joint
    return inputs, rows, pads


def _left_pad(tensor: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """``n`` zeros before ``tensor`` along ``dim`` (the mask's padding; masked keys and values)."""
    if n == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = n
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _split(joint, main_cache, branch_cache, rows: int, pads: tuple[int, int]) -> tuple:
    """Point the two caches at their rows of the joint cache (views, without the padding).

    Returns what the next step needs to reuse the joint cache: ``(joint, pads, views)``.
    """
    for j, m, o in zip(joint.layers, main_cache.layers, branch_cache.layers):
        m.keys, m.values = j.keys[:rows, :, pads[0]:], j.values[:rows, :, pads[0]:]
        o.keys, o.values = j.keys[rows:, :, pads[1]:], j.values[rows:, :, pads[1]:]
    return joint, pads, _views(main_cache, branch_cache)


def _views(main_cache, branch_cache) -> list[torch.Tensor]:
    """Both caches' tensors (a beam reorder or any other update replaces them)."""
    return [t for m, o in zip(main_cache.layers, branch_cache.layers) for t in (m.keys, m.values, o.keys, o.values)]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))
