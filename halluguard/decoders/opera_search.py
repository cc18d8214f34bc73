"""OPERA's beam search: over-trust penalty and retrospection-allocation (Huang et al., CVPR 2024).

A ``custom_generate`` loop for ``generate``, run on one prompt's ``num_beams`` rows, following the
reference (shikiw/OPERA, ``transformers-4.29.2/src/transformers/generation/utils.py``,
``opera_beam_search``, L3116-L3674). Per step:

1. candidates: each beam's ``num_attn_candidates`` largest raw logits; a lookahead (:func:`lookahead`)
   gives each candidate's next-token logits and its last-layer attention row (max over heads, divided
   by its sum over all keys): the reference runs one forward per candidate, here they are the ``C``
   tokens of one forward, side by side at the same position, each seeing the cache and itself;
2. column scores of the window with the candidate's row, ``1e-7 * prod(scale_factor * window[j:, j])``
   in the attention's dtype, stored in float16; the best column is the summary location;
3. penalty: minus the candidate row's mass on the image tokens while the response with the candidate
   has at most 10 tokens, then the best column score; candidate score = logit - ``penalty_weights`` *
   penalty, every other token -999;
4. log-softmax, ``generate``'s logits processors, + beam scores, top ``max(2, 1 + #EOS) * num_beams``
   and transformers 5.x beam bookkeeping (:class:`Hypotheses`);
5. retrospection (:class:`Retrospection`): when one summary location (>= 10) has been the mode in more
   than ``threshold`` steps in every beam, back to the state of the step after it: the cache is rebuilt
   (one prefill) and that step re-chosen from the whole vocabulary minus the tokens rejected there;
6. the next step: a chosen token is one of its parent's candidates, so the lookahead already holds its
   logits, its attention row (which joins the beam's window: the reference's ``attn_previous`` from
   ``response_start`` on) and its cache entries (:func:`keep_chosen`). Only after a rollback, or when a
   token that was no candidate wins (all candidates scored below -999), a forward of the chosen
   tokens runs. So a step costs one forward of ``num_beams * C`` tokens, not ``1 + C`` forwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from transformers.generation import GenerateBeamDecoderOnlyOutput

from . import compat
from .opera_lookahead import drop_candidates, keep_chosen, lookahead

#: The reference's score of the tokens that are not candidates (and of rejected tokens after a rollback).
OFF = -999.0
#: generate's outputs that a rollback would have to rewrite.
NOT_AVAILABLE = ("output_scores", "output_logits", "output_attentions", "output_hidden_states")
#: Responses of at most this many tokens are penalised by their image attention; summary locations
#: below it never roll back (the reference's two hard-coded 10s).
SHORT = 10


def refuse(message: str):
    """Raise a ``GuardError`` (imported here: ``guarded`` imports this module)."""
    from .guarded import GuardError

    raise GuardError(message)


@dataclass
class SearchRecord:
    """What the searches of one call did: ``rollbacks`` as ``(prompt, response length, position)``."""

    rollbacks: list[tuple[int, int, int]] = field(default_factory=list)
    fill_value: int = -1
    prompt: int = 0


@dataclass
class OperaPlan:
    """What the loop needs beyond ``generate``'s arguments."""

    method: Any  # an ``opera.OPERA``
    image_columns: torch.Tensor  # bool [prompt width]: the image's token columns
    capture: Any  # an ``opera.AttentionCapture`` (``row``, ``normalized()``), None when nothing is read
    record: SearchRecord


@dataclass(frozen=True)
class Hypotheses:
    """One prompt's finished sequences, kept as transformers 5.x beam search keeps them
    (``_update_finished_beams``, ``_check_early_stop_heuristic``, ``_beam_search_has_unfinished_sequences``).
    """

    sequences: torch.Tensor  # [beams, max_length]
    scores: torch.Tensor  # [beams], length-normalised; -1e9 in empty slots
    lengths: torch.Tensor  # [beams] generated tokens (0 in empty slots)
    finished: torch.Tensor  # [beams] bool
    improvable: bool = True  # whether the running beams may still beat the finished ones

    @classmethod
    def empty(cls, running: torch.Tensor) -> Hypotheses:
        beams = running.shape[0]
        scores = torch.full((beams,), -1e9, dtype=torch.float, device=running.device)
        zeros = torch.zeros(beams, dtype=torch.long, device=running.device)
        return cls(running.clone(), scores, zeros, zeros.bool())

    def add(self, scores, sequences, hits, cur_len: int, prompt_len: int, config) -> Hypotheses:
        """The best ``beams`` of the finished ones and of the top candidates that just hit a stop."""
        beams = self.scores.shape[0]
        just_finished = hits.clone()
        just_finished[beams:] = False
        scores = scores / ((cur_len + 1 - prompt_len) ** config.length_penalty)
        scores = scores + float(bool(self.finished.all()) and config.early_stopping is True) * -1.0e9
        scores = scores + float(not self.improvable) * -1.0e9
        scores = scores + (~just_finished) * -1.0e9
        lengths = torch.full_like(scores, cur_len + 1 - prompt_len, dtype=torch.long)
        best = torch.topk(torch.cat([self.scores, scores]), k=beams)[1]
        return replace(
            self,
            sequences=torch.cat([self.sequences, sequences])[best],
            scores=torch.cat([self.scores, scores])[best],
            lengths=torch.cat([self.lengths, lengths])[best],
            finished=torch.cat([self.finished, just_finished])[best],
        )

    def update_improvable(self, running_scores, cur_len: int, prompt_len: int, config) -> Hypotheses:
        if config.early_stopping == "never" and config.length_penalty > 0.0:
            best_length = config.max_length - prompt_len
        else:
            best_length = cur_len - prompt_len
        best_running = running_scores[:1] / (best_length**config.length_penalty)
        never = torch.tensor(-1.0e9, device=self.scores.device)
        worst = torch.where(self.finished, self.scores.min(), never)
        return replace(self, improvable=self.improvable and bool((best_running > worst).any()))

    def open(self, hits, config) -> bool:
        """Whether the search goes on."""
        all_full = bool(self.finished.all()) and config.early_stopping is True
        return self.improvable and not all_full and not bool(hits.all())


@dataclass(frozen=True)
class BeamState:
    """The running beams of one prompt, and everything a rollback restores."""

    running: torch.Tensor  # [beams, max_length]: prompt, generated tokens, then fill
    scores: torch.Tensor  # [beams] accumulated log-probabilities
    cur_len: int
    hypotheses: Hypotheses
    window: torch.Tensor  # [beams, generated, generated]: normalised attention rows of generated tokens
    parents: torch.Tensor | None = None  # the beam each row continued at the last step
    tokens: torch.Tensor | None = None  # the token each row got at the last step
    candidates: torch.Tensor | None = None  # this step's candidates and their penalised scores
    candidate_scores: torch.Tensor | None = None


def extend_window(window, parents, row, prompt_len: int) -> torch.Tensor:
    """The chosen beams' windows with their newest token's row (``attn_previous`` padded, reordered)."""
    return torch.cat([F.pad(window, (0, 1))[parents], row[:, None, prompt_len:]], dim=1)


def column_scores(window, candidate_rows, scale_factor: float) -> torch.Tensor:
    """Float16 ``[beams, candidates, columns]``: ``1e-7 * prod_{i >= j} scale_factor * local[i, j]``, where
    ``local`` is the window with the candidate's row below it (the reference's loop over ``j``, at once).

    >>> window, candidate = torch.tensor([[[1.0]]]), torch.tensor([[[0.5, 0.5]]])
    >>> [round(x, 4) for x in column_scores(window, candidate, 1e4)[0, 0].tolist()]
    [5.0, 0.0005]
    """
    beams, count, width = candidate_rows.shape
    rows = F.pad(window, (0, 1))[:, None].expand(beams, count, width - 1, width)
    local = scale_factor * torch.cat([rows, candidate_rows[:, :, None]], dim=2)
    lower = torch.ones(width, width, dtype=torch.bool, device=local.device).tril()
    products = torch.where(lower, local, torch.ones_like(local)).prod(dim=-2)
    return (1e-7 * products).to(torch.float16)


def penalise(method, window, candidate_scores, rows, image_columns, prompt_len: int):
    """Candidate scores after the over-trust penalty, and each candidate's summary location."""
    candidate_rows = rows[..., prompt_len:]
    summary_scores, locations = column_scores(window, candidate_rows, method.scale_factor).max(-1)
    if candidate_rows.shape[-1] <= SHORT:
        penalty = -rows[..., : image_columns.shape[0]][..., image_columns].sum(-1)
    else:
        penalty = summary_scores
    if method.penalty_weights:  # (0 * an infinite score would be NaN)
        candidate_scores = candidate_scores - (method.penalty_weights * penalty).float()
    if torch.isnan(candidate_scores).any():
        raise FloatingPointError(
            "OPERA: the over-trust score is NaN (a column's attention product overflowed, then met a "
            "zero); lower scale_factor"
        )
    return candidate_scores, locations


class Retrospection:
    """The reference's rollback bookkeeping for one prompt: past states, summary locations, rejections.

    The lists change exactly as the reference changes ``history_states``, ``history_rollback_locs``,
    ``max_rollback_time`` and ``reject_token_pos_gather`` (including which entries it clears); where
    the reference's ``try``/``except`` skips a rollback on an ``IndexError``, so does :meth:`target`.
    Each kept state holds its beams' window (``beams * k**2`` values at step ``k``).
    """

    def __init__(self, method):
        self.threshold, self.limit = int(method.threshold), int(method.num_attn_candidates)
        self.size = int(method.window_size)
        self.states: list[BeamState] = []
        self.locations: list[torch.Tensor] = []
        self.times = [0] * self.size
        self.rejected: list[torch.Tensor | None] = [None] * self.size

    def record(self, state: BeamState, locations: torch.Tensor) -> None:
        self.locations.append(locations.mode(-1).values)
        if len(self.states) >= self.size:
            self.states.pop(0)
        self.states.append(state)

    def target(self, response_length: int) -> int | None:
        """The position to roll back to, the history cut back to it; None when there is no rollback."""
        location = int(self.locations[-1].mode().values)
        counts = (torch.stack(self.locations, dim=1) == location).sum(1)
        if not bool((counts > self.threshold).all()) or location < SHORT:
            return None
        position = location + 1
        if position >= self.size:
            return None
        if self.times[position] >= self.limit:
            position -= 1
            if self.times[position] >= self.limit:
                return None
        self.times[position] += 1
        if response_length - position > self.size + 1:
            position = max(1, response_length - self.size - 1)
        for j in range(response_length - position - 2):
            self.states.pop()
            self.locations.pop()
            self.rejected[-(j + 1)] = None
        return position if len(self.states) >= 2 else None

    def rejections(self, position: int, undone: BeamState, vocab: int) -> torch.Tensor | None:
        """The flat ``beam * vocab + token`` entries rejected at ``position`` (None on the reference's
        ``IndexError`` path, which then ranks the restored step's penalised candidates)."""
        self.states.pop()
        self.locations.pop()
        if position + 1 >= self.size:
            return None
        self.rejected[position + 1] = None
        reject = (undone.parents * vocab + undone.tokens)[None]
        if self.rejected[position] is not None:
            reject = torch.cat([self.rejected[position], reject], dim=-1)
        self.rejected[position] = reject
        return reject


def _recompute(model, initial: dict, state: BeamState, prompt_len: int) -> tuple[Any, dict]:
    """The outputs and model kwargs of ``state``'s sequences, from a fresh cache (one prefill)."""
    kwargs = dict(initial)
    kwargs[compat.cache_key(initial)] = compat.new_cache(model)
    for _ in range(state.cur_len - prompt_len):
        kwargs = compat.advance(model, kwargs)
    if kwargs.get("inputs_embeds") is not None:
        generated = state.running[:, prompt_len : state.cur_len]
        embeds = model.get_input_embeddings()(generated).to(kwargs["inputs_embeds"].dtype)
        kwargs["inputs_embeds"] = torch.cat([kwargs["inputs_embeds"], embeds], dim=1)
    ids = state.running[:, : state.cur_len]
    outputs = model(**compat.step_inputs(model, ids, kwargs, first=True), return_dict=True)
    return outputs, compat.advance(model, kwargs, outputs)


def _beam_step(state: BeamState, log_probs, stopping_criteria, keep: int, prompt_len: int, config):
    """transformers 5.x beam search's step: top continuations, running beams, finished hypotheses."""
    beams, vocab = log_probs.shape
    cur_len = state.cur_len
    top_scores, top_indices = torch.topk((log_probs + state.scores[:, None]).reshape(1, -1), k=keep)
    top_scores, top_indices = top_scores[0], top_indices[0]
    parents, tokens = top_indices // vocab, top_indices % vocab
    sequences = state.running[parents]
    sequences[:, cur_len] = tokens
    hits = stopping_criteria(sequences[:, : cur_len + 1], None)
    alive = top_scores + hits.to(torch.float32) * -1.0e9
    chosen = torch.topk(alive, k=beams)[1]
    hypotheses = state.hypotheses.add(top_scores, sequences, hits, cur_len, prompt_len, config)
    hypotheses = hypotheses.update_improvable(alive[chosen], cur_len + 1, prompt_len, config)
    running, scores, parents, tokens = sequences[chosen], alive[chosen], parents[chosen], tokens[chosen]
    return BeamState(running, scores, cur_len + 1, hypotheses, state.window, parents, tokens), hits


def _last_logits(outputs, device) -> torch.Tensor:
    return outputs.logits[:, -1, :].to(copy=True, dtype=torch.float32, device=device)


def _fill_and_width(config, beams: int) -> tuple[int, int]:
    """transformers 5.x beam search's fill value (``pad or eos[0]``, else -1) and top-k width."""
    eos = config.eos_token_id
    eos = [] if eos is None else list(eos) if isinstance(eos, (list, tuple)) else [eos]
    pad = compat.pad_token(config)
    pad = None if pad is None else int(pad.flatten()[0])
    return ((pad or int(eos[0])) if eos else -1), max(2, 1 + len(eos)) * beams


def _check(config, input_ids, beams: int, model_kwargs) -> None:
    asked = [name for name in NOT_AVAILABLE if getattr(config, name, False)]
    if asked:
        refuse(f"{', '.join(asked)} not available with OPERA: rollbacks rewrite the history")
    if config.do_sample:
        refuse("OPERA is a beam search: do_sample=True is not available (the reference has no sampling)")
    if input_ids.shape[0] != beams:
        refuse(f"OPERA decodes one prompt over num_beams={beams} rows; num_return_sequences must be <= that")
    if not compat.plain_layers(compat.find_cache(model_kwargs)):
        refuse(
            "OPERA crops and rebuilds the KV cache: it needs generate's default dynamic cache "
            "(use_cache=True, no cache_implementation)"
        )


def opera_beam_search(
    model,
    input_ids,
    logits_processor,
    stopping_criteria,
    generation_config,
    halluguard_opera: OperaPlan | None = None,
    **model_kwargs,
):
    """OPERA's beam search over one prompt's beams (a ``custom_generate`` for ``generate``; see the module).

    Returns a ``GenerateBeamDecoderOnlyOutput`` with ``sequences`` (prompt + generated, filled after
    the end as transformers 5.x fills) and ``sequences_scores``.
    """
    if halluguard_opera is None:
        raise TypeError("opera_beam_search is run by halluguard.guard(model, 'opera'); call its generate")
    plan, config = halluguard_opera, generation_config
    method, beams, prompt_len = plan.method, config.num_beams or 1, input_ids.shape[1]
    _check(config, input_ids, beams, model_kwargs)
    fill, keep = _fill_and_width(config, beams)
    plan.record.fill_value = fill

    running = input_ids.new_full((beams, config.max_length), fill)
    running[:, :prompt_len] = input_ids
    scores = torch.zeros(beams, dtype=torch.float, device=input_ids.device)
    scores[1:] = -1e9
    state = BeamState(running, scores, prompt_len, Hypotheses.empty(running), torch.zeros(beams, 0, 0))
    initial = dict(model_kwargs)
    retrospection = Retrospection(method) if method.retrospection else None
    first, logits = True, None
    while True:
        ids = state.running[:, : state.cur_len]
        if logits is None:  # the first step, or after a rollback or a chosen token that was no candidate
            outputs = model(**compat.step_inputs(model, ids, model_kwargs, first=first), return_dict=True)
            model_kwargs = compat.advance(model, model_kwargs, outputs)
            logits = _last_logits(outputs, ids.device)
            del outputs
            if not first and plan.capture is not None:
                row = plan.capture.normalized()
                state = replace(state, window=extend_window(state.window, state.parents, row, prompt_len))
        if method.num_attn_candidates > logits.shape[-1]:
            refuse(f"OPERA: num_attn_candidates={method.num_attn_candidates} exceeds the vocabulary")
        candidate_scores, candidates = torch.topk(logits, method.num_attn_candidates, dim=-1)
        ahead = lookahead(model, ids, model_kwargs, candidates, plan.capture)
        locations = None
        if ahead.rows is not None:
            if first:  # (the window keeps the attention's dtype, as the reference's)
                state = replace(state, window=ahead.rows.new_zeros(beams, 0, 0))
            candidate_scores, locations = penalise(
                method, state.window, candidate_scores, ahead.rows, plan.image_columns, prompt_len
            )
        first = False
        state = replace(state, candidates=candidates, candidate_scores=candidate_scores)

        next_logits, rolled_back = None, False
        if retrospection is not None:
            retrospection.record(state, locations)
            response_length = state.cur_len - prompt_len + 1
            position = retrospection.target(response_length)
            if position is not None:
                rolled_back = True
                state, undone = retrospection.states[-2], retrospection.states[-1]
                outputs, model_kwargs = _recompute(model, initial, state, prompt_len)
                logits = _last_logits(outputs, ids.device)
                del outputs
                plan.record.rollbacks.append((plan.record.prompt, response_length, position))
                reject = retrospection.rejections(position, undone, logits.shape[-1])
                if reject is not None:
                    shifted = logits - (999.0 + logits.min(-1, keepdim=True).values)
                    next_logits = shifted.view(1, -1).scatter(-1, reject, OFF).view(beams, -1)
                candidates, candidate_scores = state.candidates, state.candidate_scores
        if next_logits is None:
            next_logits = torch.full_like(logits, OFF).scatter(-1, candidates, candidate_scores)

        ids = state.running[:, : state.cur_len]
        log_probs = logits_processor(ids, F.log_softmax(next_logits, dim=-1))
        state, hits = _beam_step(state, log_probs, stopping_criteria, keep, prompt_len, config)
        cache = compat.find_cache(model_kwargs)
        matches = candidates[state.parents] == state.tokens[:, None]
        if rolled_back or not bool(matches.any(-1).all()):
            if not rolled_back:
                drop_candidates(cache, candidates.shape[1])
            cache.reorder_cache(state.parents)
            logits = None
        else:  # every chosen token was looked ahead: its logits, attention row and cache entries are known
            choice = matches.int().argmax(-1)
            keep_chosen(cache, state.parents, choice, ahead.cached)
            model_kwargs = compat.advance(model, model_kwargs)
            logits = ahead.logits[state.parents, choice]
            if ahead.rows is not None:
                row = ahead.rows[state.parents, choice]
                state = replace(state, window=extend_window(state.window, state.parents, row, prompt_len))
        if not state.hypotheses.open(hits, config):
            break

    count = config.num_return_sequences or 1
    best = state.hypotheses
    length = prompt_len + int(best.lengths[:count].max())
    sequences, sequences_scores = best.sequences[:count, :length], best.scores[:count]
    return GenerateBeamDecoderOnlyOutput(sequences=sequences, sequences_scores=sequences_scores)
