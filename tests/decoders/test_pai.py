"""PAI on every family: the guarded ``generate`` decodes what a naive reference decodes.

The reference recomputes everything each step without a cache, in eager attention written out here:
in the edited blocks, the attention logits of every query row from the prompt's last token on (the
rows a cached decoding computes as "the newest token") get ``w + alpha * |w|`` on the image's
columns; the image-free guidance combines the log-softmax of the two branches as PAI's ``CFG.py``.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager

import pytest
import torch
from naive_reference import (
    Boom,
    Recorder,
    call_state,
    expand_rows,
    full_logits,
    naive_generate,
    sample_kwargs,
)
from tiny_models import (
    BUILDERS,
    IMAGE_TOKENS,
    SUPPRESSED,
    get_case,
)
from transformers import AttentionInterface, LogitsProcessorList
from transformers.masking_utils import AttentionMaskInterface, eager_mask

import halluguard
from halluguard.decoders import GuardError, family_of
from halluguard.decoders.pai import PAILogitsProcessor

FAMILIES = list(BUILDERS)
NEW_TOKENS = 6
#: Strong settings, both blocks of the tiny models edited, so that the tokens change.
STRONG = dict(alpha=3.0, gamma=1.5, start_layer=0)


class Naive:
    """What the reference's attention edits in the current forward."""

    alpha = 0.0
    layers: range = range(0)
    image: torch.Tensor | None = None  # bool (rows, sequence)
    first = 0  # the first edited query row: the prompt's last token


def _naive_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    logits = query @ key.transpose(2, 3) * scaling + attention_mask
    if Naive.image is not None and module.layer_idx in Naive.layers:
        for row in range(logits.shape[0]):
            for position in range(Naive.first, logits.shape[2]):
                w = logits[row, :, position, Naive.image[row]]
                logits[row, :, position, Naive.image[row]] = w + Naive.alpha * w.abs()
    weights = torch.softmax(logits.float(), dim=-1).to(query.dtype)
    return (weights @ value).transpose(1, 2).contiguous(), weights


AttentionInterface.register("naive_pai", _naive_attention)
AttentionMaskInterface.register("naive_pai", eager_mask)
_NAIVE_MODELS: dict[str, torch.nn.Module] = {}
#: The reference's scores of its last call, step by step, before the guidance.
NAIVE_SCORES: list[torch.Tensor] = []


def naive_model(name):
    if name not in _NAIVE_MODELS:
        model = copy.deepcopy(get_case(name).model)
        model.set_attn_implementation({"text_config": "naive_pai"})
        _NAIVE_MODELS[name] = model
    return _NAIVE_MODELS[name]


@contextmanager
def edited(ids, params, blocks=2):
    Naive.alpha, Naive.first = params["alpha"], ids.shape[1] - 1
    Naive.layers = range(params.get("start_layer", 2), params.get("end_layer") or blocks)
    Naive.image = torch.isin(ids, torch.tensor(IMAGE_TOKENS))
    try:
        yield
    finally:
        Naive.image = None


def edited_logits(name, inputs, generated, params):
    """The reference's next-token logits of ``inputs`` followed by ``generated``, the edit applied."""
    with edited(inputs["input_ids"], params):
        Naive.image = torch.cat([Naive.image, torch.zeros_like(generated, dtype=torch.bool)], dim=1)
        return full_logits(name, naive_model(name), inputs, generated)


def pai_formula(scores, other, gamma):
    if gamma == 1:
        return scores
    conditional, unconditional = scores.log_softmax(-1), other.log_softmax(-1)
    out = gamma * (conditional - unconditional) + unconditional
    keep = conditional >= conditional.max(-1, keepdim=True).values + math.log(0.1)
    return out.masked_fill(~keep, -math.inf)


def naive_pai(name, inputs, branch, params, new_tokens, do_sample=False, seed=0):
    """Decode with PAI from scratch every step (``naive_generate``), keeping the edited scores."""
    gamma = params.get("gamma", 1.1)
    NAIVE_SCORES.clear()

    def combine(scores, other, step):
        NAIVE_SCORES.append(scores.clone())
        return pai_formula(scores, other, gamma)

    def logits(generated):
        return edited_logits(name, inputs, generated, params)

    return naive_generate(
        name, naive_model(name), inputs, branch if gamma != 1 else None, combine, new_tokens,
        do_sample=do_sample, seed=seed, logits=logits,
    )


def _branch(case):
    return PAILogitsProcessor(branch=object()).distort(family_of(case.model), case.model, case.clone_inputs())


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("params", [dict(STRONG), dict(STRONG, gamma=1.0)], ids=["guided", "attention"])
def test_greedy_and_sampling_match_the_naive_reference(name, params):
    case = get_case(name)
    for do_sample in (False, True):
        expected = naive_pai(name, case.clone_inputs(), _branch(case), params, NEW_TOKENS, do_sample, seed=3)
        for execution in ("batched", "sequential"):
            guarded = halluguard.guard(case.model, "pai", seed=3, execution=execution, **params)
            recorder = Recorder()
            out = guarded.generate(
                **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(do_sample),
                logits_processor=LogitsProcessorList([recorder]),
            )
            assert torch.equal(out, expected[:, : out.shape[1]]), (execution, do_sample)
            if not do_sample:  # the edited scores themselves, step by step (before the guidance)
                for step, (_, scores) in enumerate(recorder.steps):
                    torch.testing.assert_close(scores, NAIVE_SCORES[step], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_edit_moves_every_familys_next_token_scores(name):
    """Guards against an edit that never reaches the attention (a wrong band, no image columns)."""
    case = get_case(name)
    runs = {}
    guarded = halluguard.guard(case.model, "pai", **dict(STRONG, gamma=1.0))
    for label, runner in (("plain", case.model), ("pai", guarded)):
        recorder = Recorder()
        processors = LogitsProcessorList([recorder])
        runner.generate(**case.clone_inputs(), max_new_tokens=3, logits_processor=processors)
        runs[label] = torch.stack([scores for _, scores in recorder.steps]).nan_to_num(0, 0, 0)
    assert (runs["pai"] - runs["plain"]).abs().max() > 1e-4  # (eager against SDPA alone: ~1e-7)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("do_sample", [False, True])
def test_strength_zero_is_plain_generate(name, do_sample):
    case = get_case(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        plain = case.model.generate(
            **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(do_sample)
        )
    out = halluguard.guard(case.model, "pai", seed=11, alpha=0, gamma=1, start_layer=0).generate(
        **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(do_sample)
    )
    assert torch.equal(out, plain)


@pytest.mark.parametrize("name", ["llava", "qwen2_vl", "instructblip"])
def test_beam_search_and_batches_decode_each_prompt_as_alone(name):
    case = get_case(name)
    guarded = halluguard.guard(case.model, "pai", **STRONG)
    batch = guarded.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS, num_beams=2)
    assert batch.shape[0] == 2
    if not name.startswith("qwen"):  # (row 1 is the longest prompt: no padding; Qwen's patches are flat)
        alone = {k: v[1:] for k, v in case.clone_inputs().items()}
        single = guarded.generate(**alone, max_new_tokens=NEW_TOKENS, num_beams=2)
        assert torch.equal(batch[1, : single.shape[1]], single[0])


@pytest.mark.parametrize("name", FAMILIES)
def test_every_beam_is_edited_from_its_own_sequence(name):
    """Beam search (the branch fused into the main forward): at every step, each beam's scores are the
    reference's for that beam's sequence."""
    case, beams = get_case(name), 2
    prompt = case.inputs["input_ids"].shape[1]
    for params in (dict(STRONG, gamma=1.0), STRONG):
        recorder = Recorder()
        processors = LogitsProcessorList([recorder])
        halluguard.guard(case.model, "pai", **params).generate(
            **case.clone_inputs(), max_new_tokens=4, num_beams=beams, logits_processor=processors
        )
        inputs = expand_rows(name, case.clone_inputs(), beams)
        for step, (ids, scores) in enumerate(recorder.steps):
            # (beam search normalises first, then its processors suppress tokens)
            expected = edited_logits(name, inputs, ids[:, prompt:], params).log_softmax(-1)
            expected[:, SUPPRESSED] = -math.inf
            torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-5, msg=f"step {step}")


def test_nothing_outlives_the_call_also_when_it_raises():
    case = get_case("llava")
    case.model.generate(**case.clone_inputs(), max_new_tokens=1)  # (transformers' own hooks installed)
    before = call_state(case.model)

    for params in (STRONG, dict(STRONG, gamma=1.0)):
        guarded = halluguard.guard(case.model, "pai", **params)
        guarded.generate(**case.clone_inputs(), max_new_tokens=2)
        assert call_state(case.model) == before
        with pytest.raises(RuntimeError, match="boom"):
            guarded.generate(
                **case.clone_inputs(), max_new_tokens=2, logits_processor=LogitsProcessorList([Boom()])
            )
        assert call_state(case.model) == before


def test_bad_parameters_are_refused():
    model = get_case("llava").model
    with pytest.raises(GuardError, match="PAI got unknown parameter"):
        halluguard.guard(model, "pai", beta=0.1)
    with pytest.raises(ValueError, match="gamma >= 1"):
        halluguard.guard(model, "pai", gamma=0.5)
    with pytest.raises(ValueError, match="start_layer < end_layer"):
        halluguard.guard(model, "pai", start_layer=3, end_layer=2)
