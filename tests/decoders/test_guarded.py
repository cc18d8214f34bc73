"""The guard's contract: same arguments and return values as ``generate``, clear errors, beams."""

from __future__ import annotations

import functools

import pytest
import torch
from tiny_models import get_case
from transformers.generation.streamers import BaseStreamer

import halluguard
from halluguard.decoders import (
    GuardError,
    ICDLogitsProcessor,
    M3IDLogitsProcessor,
    UnsupportedModelError,
    VCDLogitsProcessor,
    VDDLogitsProcessor,
)

NEW = 5


class Recorder(BaseStreamer):
    def __init__(self):
        self.chunks = []
        self.ended = False

    def put(self, value):
        self.chunks.append(value.clone())

    def end(self):
        self.ended = True


def test_guard_is_exposed_lazily_and_delegates():
    case = get_case("llava")
    guarded = halluguard.guard(case.model, "vcd", alpha=0.5, seed=1)
    assert guarded.config is case.model.config and guarded.device == case.model.device
    assert guarded.__wrapped__ is case.model
    assert "vcd" in repr(guarded) and "alpha=0.5" in repr(guarded)
    with torch.no_grad():
        assert torch.equal(guarded(**case.clone_inputs()).logits, case.model(**case.clone_inputs()).logits)
    guarded.some_flag = 3
    assert case.model.some_flag == 3
    del case.model.some_flag


def test_errors_name_what_is_valid():
    case = get_case("llava")
    with pytest.raises(GuardError, match="unknown method 'vdc'; valid methods: none, vcd, icd, vdd, m3id"):
        halluguard.guard(case.model, "vdc")
    with pytest.raises(
        GuardError, match="unknown parameter.*gamma.*it takes alpha, beta, execution, noise_step, seed"
    ):
        halluguard.guard(case.model, "vcd", gamma=1)
    with pytest.raises(ValueError, match="noise_step"):
        halluguard.guard(case.model, "vcd", noise_step=1000)
    with pytest.raises(GuardError, match="execution"):
        halluguard.guard(case.model, "vcd", execution="parallel")
    with pytest.raises(TypeError, match="tokenizer"):
        halluguard.guard(case.model, "icd")
    with pytest.raises(UnsupportedModelError, match="supported families"):
        halluguard.guard(torch.nn.Linear(2, 2), "vcd")
    guarded = halluguard.guard(case.model, "vcd")
    with pytest.raises(GuardError, match="video"):
        guarded.generate(**case.clone_inputs(), pixel_values_videos=torch.zeros(1), max_new_tokens=2)
    with pytest.raises(GuardError, match="assistant_model"):
        guarded.generate(**case.clone_inputs(), assistant_model=case.model, max_new_tokens=2)
    with pytest.raises(GuardError, match="beam search needs execution='sequential'"):
        halluguard.guard(case.model, "vcd", execution="batched").generate(**case.clone_inputs(), num_beams=2)
    with pytest.raises(GuardError, match="input_ids"):
        guarded.generate(pixel_values=case.inputs["pixel_values"], max_new_tokens=2)


def test_none_passes_through_without_touching_the_rng():
    case = get_case("llava")
    plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW, do_sample=False)
    state = torch.random.get_rng_state()
    out = halluguard.guard(case.model, "none").generate(
        **case.clone_inputs(), max_new_tokens=NEW, do_sample=False
    )
    assert torch.equal(out, plain) and torch.equal(state, torch.random.get_rng_state())


def test_positional_inputs_and_generation_config():
    from transformers import GenerationConfig

    case = get_case("llava")
    inputs = case.clone_inputs()
    ids = inputs.pop("input_ids")
    config = GenerationConfig(max_new_tokens=NEW, do_sample=False, pad_token_id=0, eos_token_id=2)
    a = halluguard.guard(case.model, "vdd").generate(ids, config, **inputs)
    b = halluguard.guard(case.model, "vdd").generate(
        input_ids=ids, max_new_tokens=NEW, do_sample=False, **inputs
    )
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["llava", "qwen2_vl", "idefics3"])
def test_num_return_sequences_batched_equals_sequential(name):
    case = get_case(name)
    kwargs = dict(max_new_tokens=NEW, do_sample=True, top_k=0, num_return_sequences=2)
    outs = [
        halluguard.guard(case.model, "vcd", seed=4, execution=e).generate(**case.clone_inputs(), **kwargs)
        for e in ("batched", "sequential")
    ]
    assert outs[0].shape[0] == 4 and torch.equal(outs[0], outs[1])
    # the two samples of a prompt share the prompt
    assert torch.equal(
        outs[0][0, : case.inputs["input_ids"].shape[1]], outs[0][1, : case.inputs["input_ids"].shape[1]]
    )


@pytest.mark.parametrize("method", ["vcd", "icd"])
def test_dict_output_matches_plain_generate_layout(method):
    case = get_case("llava")
    params = {"tokenizer": case.tokenizer} if method == "icd" else {}
    kwargs = dict(
        max_new_tokens=NEW,
        min_new_tokens=NEW,
        do_sample=False,
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=True,
    )
    plain = case.model.generate(**case.clone_inputs(), **kwargs)
    batched = halluguard.guard(case.model, method, seed=0, execution="batched", **params).generate(
        **case.clone_inputs(), **kwargs
    )
    sequential = halluguard.guard(case.model, method, seed=0, execution="sequential", **params).generate(
        **case.clone_inputs(), **kwargs
    )
    assert type(batched) is type(plain) is type(sequential)
    assert batched.sequences.shape == plain.sequences.shape
    assert torch.equal(batched.sequences, sequential.sequences)
    assert len(batched.scores) == len(plain.scores) == NEW
    for a, b in zip(batched.scores, sequential.scores):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(batched.logits[0], plain.logits[0])  # the first step sees the same prompt
    assert batched.past_key_values.get_seq_length() == plain.past_key_values.get_seq_length()
    layer = batched.past_key_values.layers[0]
    assert layer.keys.shape[0] == 2
    transition = case.model.compute_transition_scores(
        batched.sequences, batched.scores, normalize_logits=True
    )
    assert transition.shape == (2, NEW) and bool((transition <= 0).all())


def test_icd_lengths_keep_their_plain_meaning():
    """ICD's longer contrast prompt pads the original rows in the batched run; lengths must not shift."""
    case = get_case("llava")
    guarded = {
        e: halluguard.guard(case.model, "icd", tokenizer=case.tokenizer, execution=e)
        for e in ("batched", "sequential")
    }
    prompt = case.inputs["input_ids"].shape[1]
    for kwargs in (dict(max_length=prompt + 4), dict(max_new_tokens=6, min_new_tokens=6)):
        a = guarded["batched"].generate(**case.clone_inputs(), do_sample=False, **kwargs)
        b = guarded["sequential"].generate(**case.clone_inputs(), do_sample=False, **kwargs)
        assert torch.equal(a, b), kwargs


def test_streamer_sees_what_plain_generate_streams():
    case = get_case("llava")
    inputs = {k: v[1:] for k, v in case.clone_inputs().items()}  # streamers take one prompt
    for execution in ("batched", "sequential"):
        streamer = Recorder()
        out = halluguard.guard(case.model, "vcd", seed=0, execution=execution).generate(
            **inputs, max_new_tokens=NEW, do_sample=False, streamer=streamer
        )
        assert streamer.ended
        assert torch.equal(streamer.chunks[0], inputs["input_ids"])
        streamed = torch.cat([c.reshape(1, -1) for c in streamer.chunks], dim=1)
        assert torch.equal(streamed, out), execution


def test_sequential_keeps_an_instance_forward():
    """A forward set on the instance (accelerate's device hooks do this) is called and stays in place."""
    case = get_case("llava")
    model = case.model
    calls = []
    original = model.forward

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model.forward = wrapped
    try:
        halluguard.guard(model, "vcd", execution="sequential").generate(**case.clone_inputs(), max_new_tokens=NEW)
        assert model.forward is wrapped and len(calls) >= NEW
    finally:
        del model.forward
    assert "forward" not in model.__dict__


def test_beam_search_ranks_by_the_contrastive_distribution():
    case = get_case("llava")
    seen = []
    processor_cls = VCDLogitsProcessor
    original = processor_cls.__call__

    def spy(self, input_ids, scores):
        out = original(self, input_ids, scores)
        seen.append(out)
        return out

    processor_cls.__call__ = spy
    try:
        halluguard.guard(case.model, "vcd", seed=0).generate(
            **case.clone_inputs(), max_new_tokens=3, num_beams=2
        )
    finally:
        processor_cls.__call__ = original
    for scores in seen:  # log-probabilities of the contrastive distribution
        torch.testing.assert_close(
            torch.logsumexp(scores, -1), torch.zeros(scores.shape[0]), atol=1e-4, rtol=0
        )


@pytest.mark.parametrize("name", ["llava", "instructblip", "qwen2_vl"])
@pytest.mark.parametrize("method", ["vcd", "icd", "vdd", "m3id"])
def test_plain_logits_processors_equal_the_guard(name, method):
    case = get_case(name)
    params = {
        "vcd": dict(seed=6),
        "icd": dict(tokenizer=case.tokenizer),
        "vdd": {},
        "m3id": dict(lam=1.0, alpha=0.9),
    }
    cls = {
        "vcd": VCDLogitsProcessor,
        "icd": ICDLogitsProcessor,
        "vdd": VDDLogitsProcessor,
        "m3id": M3IDLogitsProcessor,
    }[method]
    processor = cls(case.model, case.clone_inputs(), **params[method])
    kwargs = dict(max_new_tokens=NEW, do_sample=False)
    first = case.model.generate(**case.clone_inputs(), logits_processor=[processor], **kwargs)
    again = case.model.generate(**case.clone_inputs(), logits_processor=[processor], **kwargs)  # reusable
    guard_params = {k: v for k, v in params[method].items() if k != "seed"}
    guarded = halluguard.guard(case.model, method, seed=6, execution="sequential", **guard_params).generate(
        **case.clone_inputs(), **kwargs
    )
    assert torch.equal(first, guarded) and torch.equal(again, guarded)


def test_qwen_rope_state_is_left_as_plain_generate_leaves_it():
    case = get_case("qwen2_vl")
    case.model.generate(**case.clone_inputs(), max_new_tokens=2)
    plain = case.model.model.rope_deltas.clone()
    for method, params in (("vdd", {}), ("icd", {"tokenizer": case.tokenizer})):
        for execution in ("batched", "sequential"):
            halluguard.guard(case.model, method, execution=execution, **params).generate(
                **case.clone_inputs(), max_new_tokens=2
            )
            assert torch.equal(case.model.model.rope_deltas, plain), (method, execution)


def test_generation_processors_and_user_processors_see_the_same_rows():
    """Penalties and user processors run before the contrast, on the original rows, in both executions."""
    from transformers import LogitsProcessorList, NoBadWordsLogitsProcessor

    case = get_case("llava")
    user = LogitsProcessorList([NoBadWordsLogitsProcessor([[40], [41, 42]], eos_token_id=2)])
    kwargs = dict(
        max_new_tokens=8,
        do_sample=True,
        top_k=0,
        repetition_penalty=1.3,
        no_repeat_ngram_size=2,
        logits_processor=user,
    )
    outs = [
        halluguard.guard(case.model, "icd", tokenizer=case.tokenizer, seed=8, execution=e).generate(
            **case.clone_inputs(), **kwargs
        )
        for e in ("batched", "sequential")
    ]
    assert torch.equal(outs[0], outs[1])
    assert not (outs[0][:, case.inputs["input_ids"].shape[1] :] == 40).any()


def test_hidden_states_and_attentions_of_the_original_rows():
    case = get_case("llava")
    kwargs = dict(
        max_new_tokens=3,
        min_new_tokens=3,
        do_sample=False,
        return_dict_in_generate=True,
        output_hidden_states=True,
        output_attentions=True,
    )
    plain = case.model.generate(**case.clone_inputs(), **kwargs)
    out = halluguard.guard(case.model, "icd", tokenizer=case.tokenizer).generate(
        **case.clone_inputs(), **kwargs
    )
    assert len(out.hidden_states) == len(plain.hidden_states) == 3
    for ours, theirs in zip(out.hidden_states, plain.hidden_states):
        assert [h.shape for h in ours] == [h.shape for h in theirs]
    for ours, theirs in zip(out.attentions, plain.attentions):
        assert [a.shape for a in ours] == [a.shape for a in theirs]


def test_a_processor_built_for_other_inputs_says_so():
    from halluguard.decoders.branch import BranchError

    case = get_case("llava")
    inputs = case.clone_inputs()
    processor = VDDLogitsProcessor(case.model, inputs)
    three = {k: torch.cat([v, v[:1]]) for k, v in inputs.items()}
    with pytest.raises(BranchError, match="same inputs"):
        case.model.generate(**three, logits_processor=[processor], max_new_tokens=2)


def test_importing_halluguard_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, halluguard, halluguard.decoders.cli; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    import halluguard.decoders

    assert halluguard.guard is halluguard.decoders.guard
    import halluguard.decoders.guarded  # importing the module must not shadow the function

    assert callable(halluguard.decoders.guard) and halluguard.decoders.guard is halluguard.guard
