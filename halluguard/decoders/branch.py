"""The second branch: the model run on the distorted input, step by step, with its own KV cache.

Two ways to get its next-token logits, behind one interface (``logits(input_ids)``):

- ``SequentialBranch`` runs its own cached forward each time a logits processor asks for it (under
  ``guard``, ``fused.py`` joins that forward to the main one and hands the logits over). It is
  prepared by ``model.generate`` itself (a ``custom_generate`` callable that only captures the
  prepared inputs: cache, position ids, pre-encoded images, Qwen's M-RoPE positions, PaliGemma's
  token types), and it steps exactly as ``generate``'s own loop does, so the two branches see the
  same positions and masks. It follows the rows of the main loop: it expands itself for
  ``num_return_sequences``/``num_beams`` and reorders its cache when beam search reorders beams.
- ``PairedBranch`` holds logits that the paired loop (``paired.py``) computed in the same forward
  as the original rows.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from .distortions import ROW_KEYS

#: Row-aligned model kwargs that follow the rows when beams are reordered (batch dim 0).
_ROW_KWARGS = tuple(key for key in ROW_KEYS if key != "input_ids")


class BranchError(RuntimeError):
    """The second branch cannot follow the main decoding loop."""


@contextmanager
def preserved_state(model):
    """Keep mutable per-call model state (Qwen's ``rope_deltas``) as it was before the block."""
    holders = [
        m for m in (model, getattr(model, "model", None)) if m is not None and hasattr(m, "rope_deltas")
    ]
    saved = [m.rope_deltas for m in holders]
    try:
        yield
    finally:
        for holder, value in zip(holders, saved):
            holder.rope_deltas = value


@dataclass
class Prepared:
    """What ``generate`` prepares before its loop: the ids, its generation config and model kwargs."""

    input_ids: torch.Tensor
    generation_config: Any
    model_kwargs: dict = field(default_factory=dict)


def capture(
    model, input_ids, logits_processor, stopping_criteria, generation_config, **model_kwargs
) -> Prepared:
    """A ``custom_generate`` callable that returns ``generate``'s prepared inputs instead of decoding."""
    return Prepared(input_ids, generation_config, model_kwargs)


def prepare(model, inputs: dict) -> Prepared:
    """Let ``model.generate`` prepare ``inputs`` (cache, positions, image features) and return them."""
    config = copy.deepcopy(model.generation_config)
    config.max_new_tokens, config.max_length, config.min_new_tokens, config.min_length = 1, None, None, None
    config.num_beams, config.num_return_sequences, config.do_sample = 1, 1, False
    config.return_dict_in_generate = False
    config.cache_implementation = None
    with preserved_state(model):
        return model.generate(**inputs, generation_config=config, custom_generate=capture)


def last_logits(outputs, device) -> torch.Tensor:
    """The next-token logits of a forward's output, copied to float32 (as ``generate`` does)."""
    return outputs.logits[:, -1].to(copy=True, dtype=torch.float32, device=device)


class SequentialBranch:
    """The distorted input decoded alongside the main loop, one cached forward per step.

    ``logits(input_ids)`` takes the main loop's current ids (prompt and generated tokens) and
    returns this branch's next-token logits for the same rows. A call with ids no longer than the
    previous call's starts over (a new ``generate`` call).
    """

    def __init__(self, model, inputs: dict):
        self.model = model
        self.inputs = inputs
        self.rows = int(inputs["input_ids"].shape[0])
        self.reset()

    def reset(self) -> None:
        self.state: Prepared | None = None
        self.previous: torch.Tensor | None = None
        self.pending: tuple[torch.Tensor, torch.Tensor] | None = None  # (ids, logits) of a fused step
        self._busy = False  # inside this branch's own forward

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        pending, self.pending = self.pending, None
        if pending is not None and pending[0].shape == input_ids.shape and torch.equal(pending[0], input_ids):
            self.previous = pending[0]  # already a copy of these ids
            return pending[1].to(input_ids.device)
        if self.previous is None or input_ids.shape[1] <= self.previous.shape[1]:
            logits = self._start(input_ids)
        else:
            logits = self._advance(input_ids)
        self.previous = input_ids.clone()
        return logits

    # -- fused steps (fused.py): this branch's step inside the main forward ------------------
    def can_fuse(self, input_ids: torch.Tensor) -> bool:
        """Whether the main step on ``input_ids`` is this branch's next step."""
        return not self._busy and self.state is not None and self._follows(input_ids)

    def fused_inputs(self, input_ids: torch.Tensor, prepare) -> dict:
        """Advance to ``input_ids`` (following reordered beams) and return this step's model inputs."""
        self._append(input_ids)
        with preserved_state(self.model):
            return prepare(self.state.input_ids, next_sequence_length=1, **self.state.model_kwargs)

    def fused_outputs(self, input_ids: torch.Tensor, logits: torch.Tensor, outputs) -> None:
        """Take this step's logits and cache (``outputs.past_key_values``), for the processor's next call."""
        self.state.model_kwargs = self.model._update_model_kwargs_for_generation(outputs, self.state.model_kwargs)
        self.pending = (input_ids.clone(), logits[:, -1].to(copy=True, dtype=torch.float32))

    # -- internals ----------------------------------------------------------------------------
    def _start(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = input_ids.shape[0]
        if rows % self.rows:
            raise BranchError(
                f"the contrast inputs have {self.rows} rows but generate runs {rows}; "
                "build the processor from "
                "the same inputs you pass to generate"
            )
        model = self.model
        with self._own_forward(), preserved_state(model):
            state = prepare(model, self.inputs)
            if rows != self.rows:
                state.input_ids, state.model_kwargs = model._expand_inputs_for_generation(
                    expand_size=rows // self.rows,
                    is_encoder_decoder=False,
                    input_ids=state.input_ids,
                    **state.model_kwargs,
                )
            outputs = model._prefill(state.input_ids, state.generation_config, state.model_kwargs)
            state.model_kwargs = model._update_model_kwargs_for_generation(outputs, state.model_kwargs)
        self.state = state
        return last_logits(outputs, input_ids.device)

    def _advance(self, input_ids: torch.Tensor) -> torch.Tensor:
        state, previous = self.state, self.previous
        if not self._follows(input_ids):
            raise BranchError(
                f"the contrast branch expected {previous.shape[0]} rows of {previous.shape[1] + 1} tokens, "
                "got "
                f"{tuple(input_ids.shape)}; use one processor per generate call"
            )
        self._append(input_ids)
        model = self.model
        with self._own_forward(), preserved_state(model):
            model_inputs = model.prepare_inputs_for_generation(
                state.input_ids, next_sequence_length=1, **state.model_kwargs
            )
            outputs = model(**model_inputs, return_dict=True)
            state.model_kwargs = model._update_model_kwargs_for_generation(outputs, state.model_kwargs)
        return last_logits(outputs, input_ids.device)

    def _follows(self, input_ids: torch.Tensor) -> bool:
        """Whether ``input_ids`` is the previous call's rows plus one token."""
        previous = self.previous
        return (
            previous is not None
            and input_ids.shape[0] == previous.shape[0]
            and input_ids.shape[1] == previous.shape[1] + 1
        )

    def _append(self, input_ids: torch.Tensor) -> None:
        """Follow reordered beams, then take the main loop's new token."""
        state = self.state
        parents = self._parents(input_ids[:, :-1], self.previous)
        if parents is not None:
            self._reorder(parents)
        state.input_ids = torch.cat([state.input_ids, input_ids[:, -1:].to(state.input_ids.device)], dim=-1)

    @contextmanager
    def _own_forward(self):
        """Mark this branch's own forwards, which fused steps must not take for main steps."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False

    def _parents(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor | None:
        """For each row, the previous row it continues (beam search reorders rows); None if unchanged."""
        if torch.equal(current, previous):
            return None
        groups = self.rows
        width = current.shape[0] // groups
        cur = current.view(groups, width, -1)
        prev = previous.view(groups, width, -1)
        same = (cur[:, :, None, :] == prev[:, None, :, :]).all(dim=-1)  # (group, row, candidate parent)
        if not bool(same.any(dim=-1).all()):
            raise BranchError(
                "a row of the main loop does not continue any previous row; "
                "the contrast branch cannot follow it"
            )
        local = same.to(torch.int8).argmax(dim=-1)
        offsets = torch.arange(groups, device=current.device)[:, None] * width
        return (local + offsets).flatten()

    def _reorder(self, parents: torch.Tensor) -> None:
        state = self.state
        kwargs = state.model_kwargs
        cache = kwargs.get("past_key_values")
        if cache is not None:
            cache.reorder_cache(parents.to(state.input_ids.device))
        state.input_ids = state.input_ids[parents.to(state.input_ids.device)]
        for key in _ROW_KWARGS:
            if isinstance(kwargs.get(key), torch.Tensor):
                kwargs[key] = kwargs[key][parents.to(kwargs[key].device)]
        positions = kwargs.get("position_ids")
        if isinstance(positions, torch.Tensor):
            dim = 1 if positions.ndim == 3 else 0
            kwargs["position_ids"] = positions.index_select(dim, parents.to(positions.device))


class PairedBranch:
    """Logits of the distorted rows, handed over by the paired loop just before the processors run."""

    def __init__(self):
        self.pending: torch.Tensor | None = None

    def reset(self) -> None:
        self.pending = None

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.pending is None:
            raise BranchError(
                "this processor belongs to a guarded (batched) generate call and cannot be reused"
            )
        logits, self.pending = self.pending, None
        return logits
