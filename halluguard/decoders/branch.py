"""The second branch: the model run on the distorted input, step by step, with its own KV cache.

Two ways to get its next-token logits, behind one interface (``logits(input_ids)``):

- ``SequentialBranch`` runs its own cached forward each time a logits processor asks for it (under
  ``guard``, ``fused.py`` joins that forward to the main one and hands the logits over). It is
  prepared by ``model.generate`` itself (a ``custom_generate`` callable that only captures the
  prepared inputs: position ids, pre-encoded images, Qwen's M-RoPE positions, PaliGemma's token
  types) around a ``DynamicCache`` it owns, and it steps exactly as ``generate``'s own loop does
  (the model's own ``prepare_inputs_for_generation``), so the two branches see the same positions
  and masks. It follows the rows of the main loop: generate repeats its rows for
  ``num_return_sequences``/``num_beams``, and its cache is reordered when beam search reorders beams.
- ``PairedBranch`` holds logits that the paired loop (``paired.py``) computed in the same forward
  as the original rows.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from . import compat
from .distortions import ROW_KEYS

#: Row-aligned model kwargs that follow the rows when beams are reordered (batch dim 0).
_ROW_KWARGS = tuple(key for key in ROW_KEYS if key != "input_ids")


class BranchError(RuntimeError):
    """The second branch cannot follow the main decoding loop."""


@dataclass
class Prepared:
    """What ``generate`` prepares before its loop: the ids, its generation config and model kwargs,
    and the branch's own cache (also in ``model_kwargs``, under the name the release uses)."""

    input_ids: torch.Tensor
    generation_config: Any
    model_kwargs: dict = field(default_factory=dict)
    cache: Any = None


def capture(
    model, input_ids, logits_processor, stopping_criteria, generation_config, **model_kwargs
) -> Prepared:
    """A ``custom_generate`` callable that returns ``generate``'s prepared inputs instead of decoding."""
    return Prepared(input_ids, generation_config, model_kwargs)


def prepare(model, inputs: dict, expand: int = 1) -> Prepared:
    """Let ``model.generate`` prepare ``inputs`` (positions, token types, each row repeated ``expand``
    times as for beams or several return sequences) around a cache of our own, and return them."""
    config = copy.deepcopy(model.generation_config)
    config.max_new_tokens, config.max_length, config.min_new_tokens, config.min_length = 1, None, None, None
    config.num_beams = config.num_return_sequences = expand  # generate repeats each row this often
    config.do_sample, config.return_dict_in_generate, config.cache_implementation = False, False, None
    cache = compat.new_cache(model)
    with compat.preserved_state(model):
        prepared = model.generate(
            **inputs,
            generation_config=config,
            custom_generate=capture,
            **{compat.cache_keyword(model): cache},
        )
    if compat.find_cache(prepared.model_kwargs) is not cache:
        raise compat.broken("generate did not pass the cache it was given on to its decoding loop")
    prepared.cache = cache
    return prepared


def last_logits(outputs, device) -> torch.Tensor:
    """The next-token logits of a forward's output, copied to float32 (as ``generate`` does)."""
    return outputs.logits[:, -1].to(copy=True, dtype=torch.float32, device=device)


class SequentialBranch:
    """The distorted input decoded alongside the main loop, with a KV cache of its own.

    ``logits(input_ids)`` takes the main loop's current ids (prompt and generated tokens) and
    returns this branch's next-token logits for the same rows. A call with ids no longer than the
    previous call's starts over (a new ``generate`` call). The branch steps in one of two ways:

    - by itself, when the processor asks (``logits`` runs a cached forward; beams are followed by
      comparing the rows with the previous call's);
    - inside the main forward (``fused.py``): ``step_inputs`` / ``finish_step`` around a joint
      forward, and ``reorder`` whenever generate reorders the main cache's beams.
    """

    def __init__(self, model, inputs: dict):
        self.model = model
        self.inputs = inputs
        self.rows = int(inputs["input_ids"].shape[0])
        self.reset()

    def reset(self) -> None:
        self.state: Prepared | None = None
        self.previous: torch.Tensor | None = None
        self.pending: tuple[torch.Tensor, torch.Tensor] | None = None  # (tokens, logits) of a fused step
        self.fused = False  # steps come from the main forward (fused.py), not from ``logits``
        self.busy = False  # inside this branch's own forward

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        pending, self.pending = self.pending, None
        if pending is not None:
            tokens, logits = pending
            if tokens.shape[0] != input_ids.shape[0] or not torch.equal(tokens, input_ids[:, -1:]):
                raise BranchError(
                    "the contrast branch stepped on other tokens than the logits processor sees; "
                    "use one processor per generate call"
                )
            self.previous = input_ids.clone()
            return logits.to(input_ids.device)
        if self.previous is None or input_ids.shape[1] <= self.previous.shape[1]:
            logits = self._start(input_ids)
        elif self.fused:
            raise BranchError(
                f"transformers {compat.VERSION} ran a decoding step without the model forward the contrast "
                "branch rides on; report it with this message"
            )
        else:
            logits = self._advance(input_ids)
        self.previous = input_ids.clone()
        return logits

    # -- fused steps (fused.py): this branch's step inside the main forward ------------------
    @property
    def started(self) -> bool:
        return self.state is not None

    def step_inputs(self, tokens: torch.Tensor) -> dict:
        """Take the main loop's new ``tokens`` (rows, 1) and return this step's model inputs."""
        state = self.state
        state.input_ids = torch.cat([state.input_ids, tokens.to(state.input_ids.device)], dim=-1)
        with compat.preserved_state(self.model):
            return compat.step_inputs(self.model, state.input_ids, state.model_kwargs)

    def finish_step(self, tokens: torch.Tensor, logits: torch.Tensor, outputs=None) -> None:
        """Take this step's logits (the cache, ours, was updated in place), for the processor's next call."""
        self.state.model_kwargs = compat.advance(self.model, self.state.model_kwargs, outputs)
        self.pending = (tokens.clone(), logits[:, -1].to(copy=True, dtype=torch.float32))

    def reorder(self, beam_idx: torch.Tensor) -> None:
        """Follow generate's reordering of the main rows (beam search), before the next step."""
        if self.state is not None:
            self._reorder(beam_idx)

    @contextmanager
    def own_forward(self):
        """Mark this branch's own forwards, which fused steps must not take for main steps."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False

    # -- internals ----------------------------------------------------------------------------
    def _start(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = input_ids.shape[0]
        if rows % self.rows:
            raise BranchError(
                f"the contrast inputs have {self.rows} rows but generate runs {rows}; "
                "build the processor from the same inputs you pass to generate"
            )
        model = self.model
        with self.own_forward(), compat.preserved_state(model):
            state = prepare(model, self.inputs, expand=rows // self.rows)
            inputs = compat.step_inputs(model, state.input_ids, state.model_kwargs, first=True)
            outputs = model(**inputs, return_dict=True)
            state.model_kwargs = compat.advance(model, state.model_kwargs, outputs)
        self.state = state
        return last_logits(outputs, input_ids.device)

    def _advance(self, input_ids: torch.Tensor) -> torch.Tensor:
        state, previous = self.state, self.previous
        if not self._follows(input_ids):
            raise BranchError(
                f"the contrast branch expected {previous.shape[0]} rows of {previous.shape[1] + 1} tokens, "
                f"got {tuple(input_ids.shape)}; use one processor per generate call"
            )
        parents = self._parents(input_ids[:, :-1], previous)
        if parents is not None:
            self._reorder(parents)
        model = self.model
        with self.own_forward():
            inputs = self.step_inputs(input_ids[:, -1:])
            with compat.preserved_state(model):
                outputs = model(**inputs, return_dict=True)
            state.model_kwargs = compat.advance(model, state.model_kwargs, outputs)
        return last_logits(outputs, input_ids.device)

    def _follows(self, input_ids: torch.Tensor) -> bool:
        """Whether ``input_ids`` is the previous call's rows plus one token."""
        previous = self.previous
        return (
            previous is not None
            and input_ids.shape[0] == previous.shape[0]
            and input_ids.shape[1] == previous.shape[1] + 1
        )

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
        state.cache.reorder_cache(parents.to(state.input_ids.device))
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
