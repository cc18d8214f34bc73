"""ONLY on every family: the guarded ``generate`` decodes what a naive reference decodes.

The reference recomputes everything each step without a cache, in eager attention written out here,
and builds the second logits from ONLY's equations with loops over rows and heads: in the intervened
block, the newest query's weights; per head, the text keys (seen, outside the image, but the first)
and the image keys each lose the weights above their ``mean + std``; the heads whose text-to-visual
entropy ratio is below the heads' mean are zeroed; the output projection; the last block's FFN half
on ``0.2 h + norm(o)``; the LM head on ``norm(h_te) + 0.5 norm(h)``; fusion or contrast by the L1
distance, and the plausibility cut (``ONLY/transformers/.../modeling_llama.py``, ``only_sample.py``).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from naive_reference import (
    Boom,
    Chunks,
    Recorder,
    StopAfter,
    assert_matches_naive,
    call_state,
    expand_rows,
    full_forward,
    sample_kwargs,
)
from tiny_models import BUILDERS, IMAGE_TOKENS, SUPPRESSED, get_case
from transformers import AttentionInterface, LogitsProcessorList, StoppingCriteriaList
from transformers.masking_utils import AttentionMaskInterface, eager_mask

import halluguard
from halluguard.decoders import ONLY, GuardError

FAMILIES = list(BUILDERS)
NEW_TOKENS = 6
#: Strong settings, so that both the fusion and the contrast happen on the tiny models.
STRONG = dict(alpha_pos=2.0, alpha_neg=1.5, beta=0.01, js_gamma=0.6)


class Naive:
    """What the reference's intervened block saw in the current forward."""

    seen: dict | None = None
    layer = 0


def _naive_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    weights = torch.softmax((query @ key.transpose(2, 3) * scaling + attention_mask).float(), dim=-1)
    weights = weights.to(query.dtype)
    if Naive.seen is not None and module.layer_idx == Naive.layer:
        Naive.seen.update(
            weights=weights[:, :, -1], mask=attention_mask[:, 0, -1], value=value, module=module
        )
    return (weights @ value).transpose(1, 2).contiguous(), weights


AttentionInterface.register("naive_only", _naive_attention)
AttentionMaskInterface.register("naive_only", eager_mask)
_NAIVE_MODELS: dict[str, torch.nn.Module] = {}


def naive_model(name):
    if name not in _NAIVE_MODELS:
        model = copy.deepcopy(get_case(name).model)
        model.set_attn_implementation({"text_config": "naive_only"})
        _NAIVE_MODELS[name] = model
    return _NAIVE_MODELS[name]


def _entropy(weights):
    p = weights / weights.sum()
    return -(p * torch.log(p + 1e-6)).sum()


def _intervened_row(weights, ids, seen):
    """One row's intervened weights ``(heads, keys)`` (a copy), written out key by key."""
    weights = weights.clone()
    visible = [c for c in range(weights.shape[-1]) if seen[c]]
    image = [c for c in visible if int(ids[c]) in IMAGE_TOKENS]
    text = [c for c in visible if int(ids[c]) not in IMAGE_TOKENS][1:]  # (not the start token)
    ratios = []
    for head in weights:
        for group in (text, image):
            part = head[group]
            part[part > part.mean() + part.std()] = 0
            head[group] = part
        text_entropy = torch.nan_to_num(_entropy(head[text]), nan=0.0)
        image_entropy = torch.nan_to_num(_entropy(head[image]), nan=math.inf)
        ratios.append(text_entropy / image_entropy)
    ratios = torch.stack(ratios)
    for index in range(weights.shape[0]):
        if ratios[index] < ratios.mean():
            weights[index] = 0
    return weights


def naive_only_logits(name, inputs, generated, params):
    """The reference's combined next-token logits of ``inputs`` followed by ``generated``."""
    model = naive_model(name)
    Naive.seen, Naive.layer = {}, params.get("enhance_layer_index", 0)
    try:
        out = full_forward(name, model, inputs, generated)
        seen = Naive.seen
    finally:
        Naive.seen = None
    language = model.language_model if name == "instructblip" else model
    decoder, lm_head = language.get_decoder(), language.get_output_embeddings()
    ids = torch.cat([inputs["input_ids"], generated], dim=1)
    rows = []
    with torch.no_grad():
        for row in range(ids.shape[0]):
            weights = _intervened_row(seen["weights"][row], ids[row], seen["mask"][row] == 0)
            rows.append((weights[:, None] @ seen["value"][row]).reshape(-1))
        attention = seen["module"].o_proj(torch.stack(rows))
        block = decoder.layers[-1]
        x = 0.2 * out.hidden_states[-2][:, -1] + block.input_layernorm(attention)
        hidden = x + block.mlp(block.post_attention_layernorm(x))
        enhanced = lm_head(decoder.norm(hidden) + 0.5 * out.hidden_states[-1][:, -1]).float()
    final = out.logits[:, -1].float()
    combined = []
    for row in range(final.shape[0]):
        own, te = final[row], enhanced[row]
        distance = (torch.softmax(own, -1) - torch.softmax(te, -1)).abs().sum()
        if distance < params["js_gamma"]:
            mixed = own + params["alpha_pos"] * te
        else:
            mixed = (1 + params["alpha_neg"]) * own - params["alpha_neg"] * te
        mixed[own < own.max() + math.log(params["beta"])] = -math.inf
        combined.append(mixed)
    return torch.stack(combined)


@pytest.mark.parametrize("name", FAMILIES)
def test_greedy_and_sampling_match_the_naive_reference(name):
    case = get_case(name)
    guarded = halluguard.guard(case.model, "only", seed=3, **STRONG)
    for do_sample in (False, True):
        inputs = case.clone_inputs()
        naive = lambda generated: naive_only_logits(name, inputs, generated, STRONG)  # noqa: E731
        assert_matches_naive(guarded, name, inputs, naive, NEW_TOKENS, do_sample)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_beam_is_combined_from_its_own_sequence(name):
    case, beams = get_case(name), 2
    prompt = case.inputs["input_ids"].shape[1]
    recorder = Recorder()
    params = dict(STRONG, enhance_layer_index=1)
    halluguard.guard(case.model, "only", **params).generate(
        **case.clone_inputs(), max_new_tokens=4, num_beams=beams,
        logits_processor=LogitsProcessorList([recorder]),
    )
    inputs = expand_rows(name, case.clone_inputs(), beams)
    for step, (ids, scores) in enumerate(recorder.steps):
        # (beam search normalises first, then its processors suppress tokens)
        expected = naive_only_logits(name, inputs, ids[:, prompt:], params).log_softmax(-1)
        expected[:, SUPPRESSED] = -math.inf
        torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-5, msg=f"step {step}")


def _alone(name, row):
    """Prompt ``row`` of the family's batch alone, without its padding."""
    inputs = get_case(name).clone_inputs()
    keep = inputs["attention_mask"][row].bool()
    out = {}
    for key, value in inputs.items():
        if key in ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids"):
            out[key] = value[row : row + 1][:, keep]
        elif key == "pixel_values" and name.startswith("qwen"):
            out[key] = value[16 * row : 16 * (row + 1)]  # 16 flattened patches per image
        else:
            out[key] = value[row : row + 1]
    return out


@pytest.mark.parametrize("name", ["llava", "qwen2_vl", "idefics3", "paligemma"])
def test_a_padded_prompt_decodes_in_a_batch_as_alone(name):
    case = get_case(name)
    guarded = halluguard.guard(case.model, "only", **STRONG)
    runs = []
    for inputs in (case.clone_inputs(), _alone(name, 0)):
        recorder = Recorder()
        processors = LogitsProcessorList([recorder])
        out = guarded.generate(**inputs, max_new_tokens=NEW_TOKENS, logits_processor=processors)
        runs.append((out[0, -NEW_TOKENS:], torch.stack([scores[0] for _, scores in recorder.steps])))
    assert torch.equal(runs[0][0], runs[1][0])
    torch.testing.assert_close(runs[0][1], runs[1][1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_combination_moves_the_scores_and_strength_zero_is_plain(name):
    case = get_case(name)
    runs = {}
    off = dict(alpha_pos=0, alpha_neg=0)
    for label, runner in (
        ("plain", case.model),
        ("only", halluguard.guard(case.model, "only", **STRONG)),
        ("off", halluguard.guard(case.model, "only", **off)),
    ):
        recorder = Recorder()
        processors = LogitsProcessorList([recorder])
        runner.generate(**case.clone_inputs(), max_new_tokens=3, logits_processor=processors)
        runs[label] = torch.stack([scores for _, scores in recorder.steps]).nan_to_num(0, 0, 0)
    assert (runs["only"] - runs["plain"]).abs().max() > 1e-3
    assert torch.equal(runs["off"], runs["plain"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(True))
    sampled = halluguard.guard(case.model, "only", seed=11, **off).generate(
        **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(True)
    )
    assert torch.equal(sampled, plain)


def test_streamer_and_stopping_criteria_see_the_guarded_tokens():
    name = "llava"
    inputs = _alone(name, 1)
    guarded = halluguard.guard(get_case(name).model, "only", **STRONG)
    full = guarded.generate(**inputs, max_new_tokens=NEW_TOKENS)
    streamer = Chunks()
    streamed = guarded.generate(**_alone(name, 1), max_new_tokens=NEW_TOKENS, streamer=streamer)
    assert streamer.ended and torch.equal(streamed, full)
    assert torch.equal(torch.cat(streamer.chunks, dim=1), full)
    prompt = inputs["input_ids"].shape[1]
    criteria = StoppingCriteriaList([StopAfter(prompt + 2)])
    stopped = guarded.generate(**_alone(name, 1), max_new_tokens=NEW_TOKENS, stopping_criteria=criteria)
    assert torch.equal(stopped, full[:, : prompt + 2])


def test_a_static_cache_decodes_as_the_dynamic_one():
    case = get_case("qwen2_vl")
    guarded = halluguard.guard(case.model, "only", **STRONG)
    dynamic = guarded.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS)
    static = guarded.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS, cache_implementation="static")
    assert torch.equal(static, dynamic)


def test_nothing_outlives_the_call_also_when_it_raises_and_bad_values_are_refused():
    case = get_case("llava")
    case.model.generate(**case.clone_inputs(), max_new_tokens=1)  # (transformers' own hooks installed)
    before = call_state(case.model)

    guarded = halluguard.guard(case.model, "only", **STRONG)
    guarded.generate(**case.clone_inputs(), max_new_tokens=2)
    assert call_state(case.model) == before
    with pytest.raises(RuntimeError, match="boom"):
        guarded.generate(
            **case.clone_inputs(), max_new_tokens=2, logits_processor=LogitsProcessorList([Boom()])
        )
    assert call_state(case.model) == before
    with pytest.raises(ValueError, match="enhance_layer_index 5 out of range.*2 blocks"):
        halluguard.guard(case.model, "only", enhance_layer_index=5).generate(
            **case.clone_inputs(), max_new_tokens=1
        )
    assert call_state(case.model) == before
    with pytest.raises(GuardError, match="ONLY got unknown parameter"):
        halluguard.guard(case.model, "only", alpha=1)
    with pytest.raises(ValueError, match="alpha_neg must be a finite number"):
        ONLY(alpha_neg=-1)
    with pytest.raises(ValueError, match=r"beta must be in \(0, 1\]"):
        ONLY(beta=0)
    with pytest.raises(ValueError, match="enhance_layer_index must be an integer"):
        ONLY(enhance_layer_index=1.5)
