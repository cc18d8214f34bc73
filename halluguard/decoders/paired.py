"""The batched execution: one forward over ``[original; distorted]`` rows per step.

``paired_sample`` is a ``custom_generate`` callable for ``GenerationMixin.generate``. ``generate``
prepares the stacked rows as usual (it encodes every image, the noised ones included, once before
the loop, builds one cache and the positions); this loop then mirrors ``generate``'s own
greedy/sampling loop on the first half of the rows and hands the second half's logits to the
contrast processor (a ``PairedBranch``), so the processors, stopping criteria, streamer and
outputs only ever see the original rows, exactly as with plain ``generate``.

The rows of the two halves are aligned: row ``i`` of the distorted half is the contrast input of
row ``i``, and every chosen token is appended to both. When one half needed more left padding
(ICD's instruction makes its prompt longer), the original rows carry ``extra`` padding columns,
which are removed from everything returned and from what the logits processors see (the guard
states lengths as ``max_new_tokens``/``min_length`` so that they mean what they mean for plain
``generate``).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from . import compat
from .branch import PairedBranch, last_logits


@dataclass
class PairPlan:
    """What the paired loop needs beyond ``generate``'s arguments.

    The logits processors are built here, for the original rows (``generate`` builds its own for
    all the stacked rows, whose padding and batch size some processors depend on).
    """

    branch: PairedBranch
    extra: int = 0
    streamer: Any = None
    logits_processor: list = field(default_factory=list)
    prefix_allowed_tokens_fn: Any = None
    negative_prompt_ids: Any = None
    negative_prompt_attention_mask: Any = None


def _own_processors(model, plan: PairPlan, config, input_ids, model_kwargs, half: int):
    """The logits processors plain ``generate`` would build for the original rows alone."""
    extra = plan.extra
    own_config = copy.copy(config)
    if own_config.max_length is not None:
        own_config.max_length = config.max_length - extra
    own_ids = input_ids[:half, extra:]
    mask = model_kwargs.get("attention_mask")
    own_mask = None if mask is None else mask[:half, extra:]
    if own_mask is not None and bool((own_mask == 1).all()):
        own_mask = None  # as generate drops an all-ones mask
    return compat.logits_processors(
        model,
        generation_config=own_config,
        input_ids_seq_length=own_ids.shape[1],
        encoder_input_ids=own_ids,
        prefix_allowed_tokens_fn=plan.prefix_allowed_tokens_fn,
        logits_processor=plan.logits_processor,
        device=input_ids.device,
        model_kwargs={} if own_mask is None else {"attention_mask": own_mask},
        negative_prompt_ids=plan.negative_prompt_ids,
        negative_prompt_attention_mask=plan.negative_prompt_attention_mask,
    )


def _own_cache(cache, half: int, extra: int):
    """Keep the original rows of the cache, without their extra padding columns (None if it cannot)."""
    cache.batch_select_indices(torch.arange(half))
    if not extra:
        return cache
    if not compat.plain_layers(cache):
        warnings.warn(
            compat.describe(
                "the returned output carries no cache: its rows hold extra padding that only plain "
                "attention layers can drop",
                "pass execution='sequential' to get it",
            ),
            stacklevel=4,
        )
        return None
    compat.set_layer_tensors(
        cache, [(k[:, :, extra:], v[:, :, extra:]) for k, v in compat.layer_tensors(cache)]
    )
    return cache


def _own_states(states, half: int, extra: int, prefill: bool, attention: bool):
    """Per-layer hidden states or attentions of the original rows, without the extra padding."""
    out = []
    for state in states:
        own = state[:half]
        if extra:
            if attention:
                own = own[:, :, extra:, extra:] if prefill else own[..., extra:]
            elif prefill:
                own = own[:, extra:]
        out.append(own)
    return tuple(out)


def paired_sample(
    model,
    input_ids: torch.LongTensor,
    logits_processor,
    stopping_criteria,
    generation_config,
    halluguard_pair: PairPlan | None = None,
    **model_kwargs,
):
    """Greedy search or sampling over paired rows (a ``custom_generate`` for ``generate``).

    ``logits_processor`` (built by ``generate`` for all the stacked rows) is replaced by the one
    built for the original rows from ``halluguard_pair``.
    """
    if halluguard_pair is None:
        raise TypeError("paired_sample is run by halluguard.guard; call the guarded model's generate instead")
    plan = halluguard_pair
    extra, streamer = plan.extra, plan.streamer
    rows = input_ids.shape[0]
    if rows % 2:
        raise ValueError(f"paired decoding needs an even number of rows, got {rows}")
    half = rows // 2

    config = generation_config
    pad_token_id = compat.pad_token(config)
    if pad_token_id is not None:
        pad_token_id = pad_token_id.to(input_ids.device)
    return_dict = config.return_dict_in_generate
    scores = () if (return_dict and config.output_scores) else None
    raw_logits = () if (return_dict and config.output_logits) else None
    attentions = () if (return_dict and config.output_attentions) else None
    hidden_states = () if (return_dict and config.output_hidden_states) else None
    has_eos_stopping_criteria = any(hasattr(criteria, "eos_token_id") for criteria in stopping_criteria)
    unfinished = torch.ones(half, dtype=torch.long, device=input_ids.device)

    logits_processor = _own_processors(model, plan, config, input_ids, model_kwargs, half)
    if streamer is not None:
        streamer.put(input_ids[:half, extra:].cpu())

    prefill = True
    while True:
        outputs = model(**compat.step_inputs(model, input_ids, model_kwargs, first=prefill), return_dict=True)
        model_kwargs = compat.advance(model, model_kwargs, outputs)

        logits = last_logits(outputs, input_ids.device)
        plan.branch.pending = logits[half:]
        own_ids = input_ids[:half, extra:]
        next_scores = logits_processor(own_ids, logits[:half])

        if return_dict:
            if scores is not None:
                scores += (next_scores,)
            if raw_logits is not None:
                raw_logits += (logits[:half],)
            if attentions is not None and outputs.attentions is not None:
                attentions += (_own_states(outputs.attentions, half, extra, prefill, attention=True),)
            if hidden_states is not None and outputs.hidden_states is not None:
                hidden_states += (_own_states(outputs.hidden_states, half, extra, prefill, attention=False),)

        if config.do_sample:
            probs = torch.nn.functional.softmax(next_scores, dim=-1)
            tokens = torch.multinomial(probs, num_samples=1).squeeze(1)
        else:
            tokens = torch.argmax(next_scores, dim=-1)
        if has_eos_stopping_criteria:
            tokens = tokens * unfinished + pad_token_id * (1 - unfinished)

        input_ids = torch.cat([input_ids, torch.cat([tokens, tokens])[:, None]], dim=-1)
        # the stopping criteria see the padded rows: generate measured max_length on them
        unfinished = unfinished & ~stopping_criteria(input_ids[:half], next_scores)
        if streamer is not None:
            streamer.put(tokens.cpu())
        del outputs
        prefill = False
        if unfinished.max() == 0:
            break

    if streamer is not None:
        streamer.end()
    compat.keep_state_rows(model, half)  # as plain generate leaves it: for the original rows
    sequences = input_ids[:half, extra:]
    if not return_dict:
        return sequences
    cache = compat.find_cache(model_kwargs)
    if cache is None and config.use_cache is not False:
        raise compat.broken("generate's model kwargs hold no cache after the first step")
    return compat.decoder_output(
        None if cache is None else _own_cache(cache, half, extra),
        sequences=sequences,
        scores=scores,
        logits=raw_logits,
        attentions=attentions,
        hidden_states=hidden_states,
    )
