"""The sequential execution's decoding steps, fused into the main forward.

A ``SequentialBranch`` needs one forward of the whole model per step; at small batch a forward is
bound by reading the weights, so a separate second forward nearly doubles the cost of a step.
``fused_steps(model, branch, ...)`` runs the branch's step inside the forward ``generate`` makes
anyway, with two torch forward hooks on the model and a cache of our own for the main rows:

- generate is given that cache (a ``DynamicCache`` whose ``reorder_cache`` also reorders the
  branch, so the branch follows beam search's reorders exactly, before the next step);
- the forward pre-hook recognises a decoding step by that cache, joins the branch's rows (the same
  new token, its own positions, mask and KV cache, left-padded to one length) to the main rows;
- the forward hook hands ``generate`` the main rows' logits and its cache back, and keeps the
  branch's logits for the contrast processor, which takes them instead of running a forward.

``generate``'s loop is untouched: sampling, streamers, stopping criteria, ``num_return_sequences``
and beam search work as before, and the tokens are the same. The prefills stay separate (the main
one in ``generate``, the branch's at the processor's first call). A step that cannot be joined (a
cache with other than plain attention layers, inputs the two branches do not share, outputs asking
for attentions or hidden states) runs the branch's forward alone, then the main one, and says so
once; where the main cache cannot be ours (a ``cache_implementation`` was asked for, or no cache),
the processor steps the branch itself, and that is said once too. The hooks are removed and the
cache becomes a plain ``DynamicCache`` again when the block ends, also on errors.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache

from . import compat
from .branch import SequentialBranch
from .distortions import ROW_KEYS

#: Tensors along the sequence that a step carries whole (not only the new column): left-padded to join.
_SEQUENCE_KEYS = tuple(key for key in ROW_KEYS if key != "input_ids")
_COST = "the branch runs a forward of its own each step (about 2x the cost of a step at small batch)"


class FallbackWarning(UserWarning):
    """A guarded call takes a slower path that gives the same tokens."""


def _warn(reason: str) -> None:
    warnings.warn(
        compat.describe(f"a contrast branch's steps cannot share the main forward: {reason}", _COST),
        FallbackWarning,
        stacklevel=4,
    )


class _FollowedCache(DynamicCache):
    """generate's cache for the main rows; the branch follows its beam reorders."""

    def reorder_cache(self, beam_idx: torch.LongTensor):
        super().reorder_cache(beam_idx)
        follower = self.__dict__.get("follower")
        if follower is not None:
            follower(beam_idx)

    def release(self) -> None:
        """Become a plain ``DynamicCache`` (what generate returns to the user)."""
        self.__dict__.pop("follower", None)
        self.__class__ = DynamicCache


@contextmanager
def fused_steps(model, branch: SequentialBranch, config, image_keys: tuple[str, ...] = ()):
    """Within the block, ``model``'s decoding steps also advance ``branch`` (see the module docstring).

    Yields the keyword arguments to add to ``model.generate`` (the cache of the main rows), or an
    empty dict where steps cannot be fused (then the processor steps the branch, as without fusion).
    ``image_keys`` are image metadata a decoding step may carry without pixels (dropped when joining).
    """
    if config.cache_implementation is not None or config.use_cache is False:
        why = (
            f"cache_implementation={config.cache_implementation!r}"
            if config.use_cache is not False
            else "use_cache=False"
        )
        _warn(why)
        yield {}
        return
    cache = _FollowedCache(config=model.config.get_text_config(decoder=True))
    cache.follower = branch.reorder
    step = _JointStep(branch, cache, image_keys)
    branch.fused = True
    hooks = [
        model.register_forward_pre_hook(step.before, with_kwargs=True),
        model.register_forward_hook(step.after, with_kwargs=True),
    ]
    try:
        yield {compat.cache_keyword(model): cache}
    finally:
        for hook in hooks:
            hook.remove()
        branch.fused = False
        cache.release()


class _JointStep:
    """The two hooks of a fused call, and what passes from one to the other."""

    def __init__(self, branch: SequentialBranch, cache: DynamicCache, image_keys: tuple[str, ...]):
        self.branch, self.cache, self.image_keys = branch, cache, image_keys
        self.open: tuple | None = None  # (tokens, rows, pads, joint cache) between the two hooks
        self.last: tuple | None = None  # what the previous joint step left (see _split)

    def before(self, module, args, kwargs):
        branch = self.branch
        if branch.busy or not branch.started or compat.find_cache(kwargs) is not self.cache:
            return None
        if self.cache.get_seq_length() == 0:  # the main prefill
            return None
        tokens = kwargs.get("input_ids")
        if args or not (isinstance(tokens, torch.Tensor) and tokens.ndim == 2 and tokens.shape[1] == 1):
            raise compat.broken("a decoding step's forward got no new token as input_ids")
        own = branch.step_inputs(tokens)
        joint, reason = _join(kwargs, own, self.image_keys, self.last)
        if joint is None:
            _warn(reason)
            with branch.own_forward(), compat.preserved_state(module):
                alone = module(**own, return_dict=True)
            branch.finish_step(tokens, alone.logits, alone)
            return None
        inputs, rows, pads = joint
        self.open = (tokens, rows, pads, compat.find_cache(inputs))
        return args, inputs

    def after(self, module, args, kwargs, output):
        if self.open is None:
            return None
        tokens, rows, pads, joint = self.open
        self.open = None
        branch_cache = self.branch.state.cache
        self.last = _split(joint, self.cache, branch_cache, rows, pads)
        self.branch.finish_step(tokens, output.logits[rows:])
        output.logits = output.logits[:rows]
        key = compat.cache_key(output)
        if key is not None:
            output[key] = self.cache
        return output


def _join(main: dict, own: dict, image_keys, last) -> tuple[Any, str]:
    """``((inputs, rows, pads), "")`` for the joint step ``[main; branch]``, or ``(None, reason)``
    (``rows``: the main rows; ``pads``: each branch's left padding in the joint cache).

    ``last`` is what the previous joint step left (:func:`_split`): when both caches still hold its
    views (no beam reordered them), its joint cache is used again instead of padding both anew.
    """
    if main.get("output_attentions") or main.get("output_hidden_states"):
        return None, "attentions or hidden states were asked for"
    main_cache, branch_cache = compat.find_cache(main), compat.find_cache(own)
    if not (compat.plain_layers(main_cache) and compat.plain_layers(branch_cache)):
        return None, "a cache has other than plain attention layers (sliding window, static, quantized)"
    if len(main_cache.layers) != len(branch_cache.layers) or not main_cache.layers:
        return None, "the two caches have different layers"
    rows = main["input_ids"].shape[0]
    if not (isinstance(own.get("input_ids"), torch.Tensor) and own["input_ids"].shape == (rows, 1)):
        return None, "the branch's step has other input ids than the main step"
    past = (main_cache.get_seq_length(), branch_cache.get_seq_length())
    width = max(past)
    pads = (width - past[0], width - past[1])
    step_has_pixels = any(isinstance(d.get("pixel_values"), torch.Tensor) for d in (main, own))
    inputs: dict[str, Any] = {}
    masks = [d.get("attention_mask") for d in (main, own)]
    if any(m is not None for m in masks) or pads != (0, 0):  # generate leaves out an all-ones mask
        masks = [
            m if m is not None else torch.ones(rows, n + 1, dtype=torch.long, device=main["input_ids"].device)
            for m, n in zip(masks, past)
        ]
        if any(m.ndim != 2 for m in masks):
            return None, "an attention mask is not 2-D"
        inputs["attention_mask"] = torch.cat(
            [_left_pad(masks[0], pads[0], 1), _left_pad(masks[1], pads[1], 1)]
        )
    for key in {k for k, v in main.items() if v is not None} | {k for k, v in own.items() if v is not None}:
        a, b = main.get(key), own.get(key)
        if key == "attention_mask" or isinstance(a, Cache) or isinstance(b, Cache):
            continue
        if key in image_keys and key != "pixel_values" and not step_has_pixels:
            continue  # image metadata without pixels: unused in a decoding step
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            if a is not None and b is not None and a != b:
                return None, f"the two steps disagree on {key}"
            inputs[key] = a if a is not None else b
        elif not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return None, f"only one of the two steps has {key}"
        elif (
            key in _SEQUENCE_KEYS
            and a.ndim == b.ndim == 2
            and (a.shape[1], b.shape[1]) == (past[0] + 1, past[1] + 1)
        ):
            inputs[key] = torch.cat([_left_pad(a, pads[0], 1), _left_pad(b, pads[1], 1)])
        elif key == "position_ids" and a.ndim == 3:  # Qwen's M-RoPE: (sections, rows, length)
            if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
                return None, "the two steps' M-RoPE positions differ in shape"
            inputs[key] = torch.cat([a, b], dim=1)
        elif a.shape == b.shape and a.shape[0] == rows:
            inputs[key] = torch.cat([a, b])
        else:
            return None, f"the two steps' {key} cannot be stacked ({tuple(a.shape)} and {tuple(b.shape)})"
    key = compat.cache_key(main)
    if last is not None and last[1] == pads and _same(last[2], _views(main_cache, branch_cache)):
        inputs[key] = last[0]
        return (inputs, rows, pads), ""
    inputs[key] = compat.cache_from_tensors(
        (
            torch.cat([_left_pad(mk, pads[0], 2), _left_pad(bk, pads[1], 2)]),
            torch.cat([_left_pad(mv, pads[0], 2), _left_pad(bv, pads[1], 2)]),
        )
        for (mk, mv), (bk, bv) in zip(compat.layer_tensors(main_cache), compat.layer_tensors(branch_cache))
    )
    return (inputs, rows, pads), ""


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
    tensors = compat.layer_tensors(joint)
    compat.set_layer_tensors(
        main_cache, [(k[:rows, :, pads[0] :], v[:rows, :, pads[0] :]) for k, v in tensors]
    )
    compat.set_layer_tensors(
        branch_cache, [(k[rows:, :, pads[1] :], v[rows:, :, pads[1] :]) for k, v in tensors]
    )
    return joint, pads, _views(main_cache, branch_cache)


def _views(main_cache, branch_cache) -> list[torch.Tensor]:
    """Both caches' tensors (a beam reorder or any other update replaces them)."""
    return [
        t
        for (mk, mv), (bk, bv) in zip(compat.layer_tensors(main_cache), compat.layer_tensors(branch_cache))
        for t in (mk, mv, bk, bv)
    ]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))
