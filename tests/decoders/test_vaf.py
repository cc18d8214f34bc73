"""VAF on every family: the guarded ``generate`` decodes what a naive reference decodes.

The reference recomputes everything each step without a cache, in eager attention written out here:
in the edited blocks, the raw attention logits of every query after the image are multiplied by
``enh_para`` on the image's columns and by ``sup_para`` on the columns before it (not padding),
before the mask and the softmax, as ClearSight's ``AttnAdapter.py``.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from naive_reference import (
    Boom,
    Recorder,
    assert_matches_naive,
    call_state,
    expand_rows,
    full_logits,
    sample_kwargs,
)
from tiny_models import BUILDERS, IMAGE_TOKENS, SUPPRESSED, get_case
from transformers import AttentionInterface, LogitsProcessorList
from transformers.masking_utils import AttentionMaskInterface, eager_mask

import halluguard
from halluguard.decoders import VAF, GuardError

FAMILIES = list(BUILDERS)
NEW_TOKENS = 6
#: Strong settings, both blocks of the tiny models edited, so that the scores move visibly.
STRONG = dict(enh_para=3.0, sup_para=0.2, start_layer=0, end_layer=2)


class Naive:
    """What the reference's attention edits in the current forward."""

    factors: torch.Tensor | None = None  # (rows, sequence): each key column's factor
    after: list[int] = []  # each row's first query after the image
    layers: range = range(0)


def _naive_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    logits = query @ key.transpose(2, 3) * scaling
    if Naive.factors is not None and module.layer_idx in Naive.layers:
        for row in range(logits.shape[0]):
            for position in range(Naive.after[row], logits.shape[2]):
                logits[row, :, position] = logits[row, :, position] * Naive.factors[row]
    weights = torch.softmax((logits + attention_mask).float(), dim=-1).to(query.dtype)
    return (weights @ value).transpose(1, 2).contiguous(), weights


AttentionInterface.register("naive_vaf", _naive_attention)
AttentionMaskInterface.register("naive_vaf", eager_mask)
_NAIVE_MODELS: dict[str, torch.nn.Module] = {}


def naive_model(name):
    if name not in _NAIVE_MODELS:
        model = copy.deepcopy(get_case(name).model)
        model.set_attn_implementation({"text_config": "naive_vaf"})
        _NAIVE_MODELS[name] = model
    return _NAIVE_MODELS[name]


def edited_logits(name, inputs, generated, params):
    """The reference's next-token logits of ``inputs`` followed by ``generated``, the edit applied."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    factors = torch.ones(ids.shape[0], ids.shape[1] + generated.shape[1])
    after = []
    for row in range(ids.shape[0]):
        image = [i for i, token in enumerate(ids[row].tolist()) if token in IMAGE_TOKENS]
        for column in range(image[0]):
            if mask[row, column]:
                factors[row, column] = params["sup_para"]
        factors[row, image] = params["enh_para"]
        after.append(image[-1] + 1)
    Naive.factors, Naive.after = factors, after
    Naive.layers = range(params.get("start_layer", 0), params.get("end_layer") or 2)
    try:
        return full_logits(name, naive_model(name), inputs, generated)
    finally:
        Naive.factors = None


@pytest.mark.parametrize("name", FAMILIES)
def test_greedy_and_sampling_match_the_naive_reference(name):
    case = get_case(name)
    guarded = halluguard.guard(case.model, "vaf", seed=3, **STRONG)
    for do_sample in (False, True):
        inputs = case.clone_inputs()
        naive = lambda generated: edited_logits(name, inputs, generated, STRONG)  # noqa: E731
        assert_matches_naive(guarded, name, inputs, naive, NEW_TOKENS, do_sample)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_beam_is_edited_from_its_own_sequence(name):
    case, beams = get_case(name), 2
    prompt = case.inputs["input_ids"].shape[1]
    recorder = Recorder()
    processors = LogitsProcessorList([recorder])
    halluguard.guard(case.model, "vaf", **STRONG).generate(
        **case.clone_inputs(), max_new_tokens=4, num_beams=beams, logits_processor=processors
    )
    inputs = expand_rows(name, case.clone_inputs(), beams)
    for step, (ids, scores) in enumerate(recorder.steps):
        # (beam search normalises first, then its processors suppress tokens)
        expected = edited_logits(name, inputs, ids[:, prompt:], STRONG).log_softmax(-1)
        expected[:, SUPPRESSED] = -math.inf
        torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-5, msg=f"step {step}")


@pytest.mark.parametrize("name", FAMILIES)
def test_the_edit_moves_the_scores_and_strength_one_is_plain(name):
    case = get_case(name)
    runs = {}
    off = dict(enh_para=1, sup_para=1, start_layer=0)
    for label, runner in (
        ("plain", case.model),
        ("vaf", halluguard.guard(case.model, "vaf", **STRONG)),
        ("off", halluguard.guard(case.model, "vaf", **off)),
    ):
        recorder = Recorder()
        processors = LogitsProcessorList([recorder])
        runner.generate(**case.clone_inputs(), max_new_tokens=3, logits_processor=processors)
        runs[label] = torch.stack([scores for _, scores in recorder.steps]).nan_to_num(0, 0, 0)
    assert (runs["vaf"] - runs["plain"]).abs().max() > 1e-3
    assert torch.equal(runs["off"], runs["plain"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(True))
    sampled = halluguard.guard(case.model, "vaf", seed=11, **off).generate(
        **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(True)
    )
    assert torch.equal(sampled, plain)


def test_nothing_outlives_the_call_also_when_it_raises_and_bad_values_are_refused():
    case = get_case("llava")
    case.model.generate(**case.clone_inputs(), max_new_tokens=1)  # (transformers' own hooks installed)
    before = call_state(case.model)

    guarded = halluguard.guard(case.model, "vaf", **STRONG)
    guarded.generate(**case.clone_inputs(), max_new_tokens=2)
    assert call_state(case.model) == before
    with pytest.raises(RuntimeError, match="boom"):
        guarded.generate(
            **case.clone_inputs(), max_new_tokens=2, logits_processor=LogitsProcessorList([Boom()])
        )
    assert call_state(case.model) == before
    with pytest.raises(GuardError, match="VAF got unknown parameter"):
        halluguard.guard(case.model, "vaf", alpha=1)
    with pytest.raises(ValueError, match="enh_para must be a finite number"):
        VAF(enh_para=-1)
    with pytest.raises(ValueError, match="start_layer < end_layer"):
        VAF(start_layer=3, end_layer=2)
