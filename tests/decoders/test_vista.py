"""VISTA on every family: the guarded ``generate`` decodes what a naive reference decodes.

The reference is written out again after LzVv123456/VISTA: the steering vector from two uncached
forwards traced by block hooks (``ForwardTracer``: each block's output at the last position, with and
without the image), plus the ``e_1`` its one-sample PCA adds; each block's ``mlp`` wrapped in
``nn.Sequential(mlp, VSVLayer)`` on a copy of the model; the self-logits augmentation as its
``llava_llama.py`` forward computes it from ``outputs.hidden_states[1:]``. Every step recomputes the
whole sequence without a cache.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from naive_reference import Boom, Recorder, call_state, expand_rows, full_forward, sample_kwargs
from tiny_models import BUILDERS, EOS, PAD, SUPPRESSED, get_case
from transformers import LogitsProcessorList

import halluguard
from halluguard.decoders import VISTA, GuardError, family_of

FAMILIES = list(BUILDERS)
NEW = 6
#: Strong settings for the tiny models (2 blocks): both parts, the window over both blocks (block 1's entry
#: is the normed final state); the steering alone; the augmentation alone on block 0.
PARAMS = [
    dict(vsv_lambda=1.0, logits_layers=(0, 1), logits_alpha=0.5),
    dict(vsv_lambda=0.5, logits_aug=False),
    dict(vsv=False, logits_layers="0,0", logits_alpha=0.7),
]


def _text_model(name, model):
    return model.language_model if name == "instructblip" else model


class VSVLayer(torch.nn.Module):
    """The reference's ``VSVLayer`` (one vector, one strength), with one vector per row."""

    def __init__(self, vsv, lam):
        super().__init__()
        self.vsv, self.lam = vsv, lam  # vsv: (rows, hidden)

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        original_norm = torch.norm(x, p=2, dim=-1, keepdim=True)
        vsv = self.vsv[:, None, :]
        lambda_sim = 1.0 + torch.max(torch.tensor([0.0]), F.cosine_similarity(x, -vsv, dim=-1)).unsqueeze(-1)
        y = self.lam * lambda_sim * F.normalize(vsv, dim=-1).repeat(1, x.shape[1], 1)
        x = F.normalize(F.normalize(x, p=2, dim=-1) + y, p=2, dim=-1) * original_norm
        return x.to(dtype)


def traced(name, model, inputs):
    """Each block's output at the last position, ``(rows, blocks, hidden)``, from one uncached forward."""
    blocks = _text_model(name, model).get_decoder().layers
    outputs = {}
    hooks = [
        block.register_forward_hook(lambda module, args, out, i=i: outputs.__setitem__(i, out[:, -1].float()))
        for i, block in enumerate(blocks)
    ]
    try:
        full_forward(name, model, inputs, torch.zeros(inputs["input_ids"].shape[0], 0, dtype=torch.long))
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack([outputs[i] for i in range(len(blocks))], dim=1)


def visual_vectors(name, model, inputs):
    """``obtain_vsv`` per prompt: with image minus without, and the ``e_1`` of its one-sample PCA."""
    negative = family_of(model).drop_image(model, inputs)
    vectors = traced(name, model, inputs) - traced(name, model, negative)
    vectors[:, 0, 0] += 1.0
    return vectors


def steered_model(name, model, vectors, lam):
    """A copy of ``model`` whose blocks' MLPs are followed by ``VSVLayer`` (``add_vsv_layers``)."""
    steered = copy.deepcopy(model)
    for i, block in enumerate(_text_model(name, steered).get_decoder().layers):
        block.mlp = torch.nn.Sequential(block.mlp, VSVLayer(vectors[:, i], lam))
    return steered


def reference_logits(name, model, inputs, generated, params):
    """The reference's next-token logits: steered forward, then ``logits_alpha`` of the window's mean."""
    params = VISTA(**params).__dict__
    if params["vsv"] and params["vsv_lambda"]:
        vectors = visual_vectors(name, model, inputs)
        model = steered_model(name, model, vectors.repeat_interleave(generated.shape[0] // len(vectors), 0),
                              params["vsv_lambda"])
        inputs = expand_rows(name, inputs, generated.shape[0] // inputs["input_ids"].shape[0])
    elif generated.shape[0] != inputs["input_ids"].shape[0]:
        inputs = expand_rows(name, inputs, generated.shape[0] // inputs["input_ids"].shape[0])
    out = full_forward(name, model, inputs, generated)
    logits = out.logits[:, -1].float()
    if params["logits_aug"] and params["logits_alpha"]:
        first, last = params["logits_layers"]
        head = _text_model(name, model).get_output_embeddings()
        hidden = out.hidden_states[1:]  # "ignore embedding layer"
        augmented = torch.stack([head(hidden[i][:, -1]).float() for i in range(first, last + 1)]).mean(0)
        logits = params["logits_alpha"] * augmented + (1 - params["logits_alpha"]) * logits
    return logits


def naive_generate(name, model, inputs, params, do_sample, seed):
    rows = inputs["input_ids"].shape[0]
    generated = torch.zeros(rows, 0, dtype=torch.long)
    unfinished = torch.ones(rows, dtype=torch.long)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for _ in range(NEW):
            scores = reference_logits(name, model, inputs, generated, params)
            scores[:, SUPPRESSED] = -math.inf
            if do_sample:
                tokens = torch.multinomial(torch.softmax(scores, -1), 1).squeeze(1)
            else:
                tokens = scores.argmax(-1)
            tokens = tokens * unfinished + PAD * (1 - unfinished)
            generated = torch.cat([generated, tokens[:, None]], dim=1)
            unfinished = unfinished & (tokens != EOS).long()
            if unfinished.max() == 0:
                break
    return generated


@pytest.mark.parametrize("name", FAMILIES)
def test_greedy_and_sampling_match_the_naive_reference(name):
    case = get_case(name)
    prompt = case.inputs["input_ids"].shape[1]
    for params in PARAMS:
        for do_sample in (False, True):
            out = halluguard.guard(case.model, "vista", seed=5, **params).generate(
                **case.clone_inputs(), max_new_tokens=NEW, **sample_kwargs(do_sample)
            )
            expected = naive_generate(name, case.model, case.clone_inputs(), params, do_sample, 5)
            assert out[:, prompt:].tolist() == expected.tolist(), (params, do_sample)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_beam_and_returned_sequence_is_steered_by_its_prompts_vector(name):
    case, beams = get_case(name), 3
    params = PARAMS[0]
    prompt = case.inputs["input_ids"].shape[1]
    recorder = Recorder()
    halluguard.guard(case.model, "vista", **params).generate(
        **case.clone_inputs(), max_new_tokens=4, num_beams=beams, num_return_sequences=2,
        early_stopping="never", logits_processor=LogitsProcessorList([recorder]),
    )
    assert len(recorder.steps) == 4
    with torch.no_grad():
        for step, (ids, scores) in enumerate(recorder.steps):
            # (beam search normalises first, then its processors suppress tokens)
            expected = reference_logits(name, case.model, case.clone_inputs(), ids[:, prompt:], params)
            expected = expected.log_softmax(-1)
            expected[:, SUPPRESSED] = -math.inf
            torch.testing.assert_close(scores, expected, atol=1e-4, rtol=1e-4, msg=f"step {step}")


@pytest.mark.parametrize("name", FAMILIES)
def test_both_parts_off_is_plain_generate(name):
    case = get_case(name)
    for off in (dict(vsv_lambda=0, logits_alpha=0), dict(vsv=False, logits_aug=False)):
        for kwargs in (dict(do_sample=False), dict(do_sample=False, num_beams=2)):
            plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW, **kwargs)
            guarded = halluguard.guard(case.model, "vista", **off).generate(
                **case.clone_inputs(), max_new_tokens=NEW, **kwargs
            )
            assert torch.equal(plain, guarded), (off, kwargs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(11)
            plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW, **sample_kwargs(True))
        sampled = halluguard.guard(case.model, "vista", seed=11, **off).generate(
            **case.clone_inputs(), max_new_tokens=NEW, **sample_kwargs(True)
        )
        assert torch.equal(sampled, plain), off


def test_each_part_changes_the_scores():
    """On the tiny models both the steering and the augmentation move what is decoded."""
    moved = set()
    for name in FAMILIES:
        case = get_case(name)
        runs = {}
        for label, params in (("plain", dict(vsv=False, logits_aug=False)), ("vsv", PARAMS[1]),
                              ("sla", PARAMS[2])):
            recorder = Recorder()
            halluguard.guard(case.model, "vista", **params).generate(
                **case.clone_inputs(), max_new_tokens=3, logits_processor=LogitsProcessorList([recorder])
            )
            runs[label] = torch.stack([scores for _, scores in recorder.steps]).nan_to_num(0, 0, 0)
        for label in ("vsv", "sla"):
            if (runs[label] - runs["plain"]).abs().max() > 1e-3:
                moved.add((name, label))
    assert {label for _, label in moved} == {"vsv", "sla"}
    assert len(moved) >= len(FAMILIES)  # most families, both parts


def test_a_prompt_decodes_the_same_alone_and_in_a_batch():
    case = get_case("llava")
    batch = halluguard.guard(case.model, "vista", **PARAMS[0]).generate(
        **case.clone_inputs(), max_new_tokens=NEW, do_sample=False
    )
    alone = {k: v[1:] for k, v in case.clone_inputs().items()}
    single = halluguard.guard(case.model, "vista", **PARAMS[0]).generate(
        **alone, max_new_tokens=NEW, do_sample=False
    )
    assert batch[1, -NEW:].tolist() == single[0, -NEW:].tolist()


def test_the_default_window_is_the_references_share_of_the_depth():
    assert VISTA().window(32) == [25, 26, 27, 28, 29, 30]  # run_chair.sh: --logits_layers 25,30
    assert VISTA().window(28) == list(range(22, 27)) and VISTA().window(2) == [0]
    assert list(VISTA().steered_blocks(32)) == list(range(32))
    assert list(VISTA(vsv_layers="2,40").steered_blocks(32)) == list(range(2, 32))
    vista = VISTA()
    assert (vista.vsv_lambda, vista.logits_alpha, vista.vsv, vista.logits_aug) == (0.1, 0.3, True, True)


def test_nothing_outlives_the_call_also_when_it_raises_and_the_rng_is_untouched():
    case = get_case("qwen2_vl")
    case.model.generate(**case.clone_inputs(), max_new_tokens=1)  # (transformers' own hooks installed)
    before, rope = call_state(case.model), case.model.model.rope_deltas.clone()
    state = torch.random.get_rng_state()
    guarded = halluguard.guard(case.model, "vista", **PARAMS[0])
    guarded.generate(**case.clone_inputs(), max_new_tokens=2)
    assert call_state(case.model) == before and torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(RuntimeError, match="boom"):
        guarded.generate(
            **case.clone_inputs(), max_new_tokens=2, logits_processor=LogitsProcessorList([Boom()])
        )
    assert call_state(case.model) == before
    case.model.generate(**case.clone_inputs(), max_new_tokens=2)
    assert torch.equal(case.model.model.rope_deltas, rope)


def test_bad_parameters_and_layers_are_named():
    case = get_case("llava")
    with pytest.raises(GuardError, match="VISTA got unknown parameter"):
        halluguard.guard(case.model, "vista", lamda=0.1)
    with pytest.raises(ValueError, match="vsv_lambda must be a finite number"):
        VISTA(vsv_lambda=float("nan"))
    with pytest.raises(ValueError, match="logits_layers must be None or two block indices"):
        VISTA(logits_layers="25")
    with pytest.raises(ValueError, match="first <= last"):
        VISTA(logits_layers=(3, 2))
    with pytest.raises(ValueError, match="vsv must be True or False"):
        VISTA(vsv=1)
    with pytest.raises(ValueError, match=r"logits_layers \(25, 30\) out of range.*2 blocks"):
        halluguard.guard(case.model, "vista", logits_layers="25,30").generate(
            **case.clone_inputs(), max_new_tokens=1
        )
    with pytest.raises(GuardError, match="continuous batching"):
        halluguard.guard(case.model, "vista").generate(
            **case.clone_inputs(), max_new_tokens=1, cache_implementation="paged"
        )
