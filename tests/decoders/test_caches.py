"""The caches of a guarded call, on every family: the branch follows the beams, dict outputs carry the
main cache as plain ``generate`` does, sequential steps fuse, and what cannot be done is said, not hidden.

These are the tests that failed when transformers 5.24 renamed generate's cache key
(``past_key_values`` -> ``cache``): the branch then skipped its beam reorder, the fused steps
silently ran two forwards, and the batched execution returned no cache.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from naive_reference import expand_rows, full_logits
from tiny_models import BUILDERS, get_case

import halluguard
from halluguard.decoders import VCDLogitsProcessor, VDDLogitsProcessor, compat, family_of
from halluguard.decoders.branch import SequentialBranch
from halluguard.decoders.fused import FallbackWarning

NEW = 5
FAMILIES = list(BUILDERS)


def _forwards(target) -> tuple[list[int], object]:
    """Rows of every forward of ``target`` (its LM head runs once per forward), and the hook to remove."""
    rows: list[int] = []
    head = target.get_output_embeddings()
    return rows, head.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))


@pytest.mark.parametrize("name", FAMILIES)
def test_beam_search_branch_follows_the_beams(name, monkeypatch):
    """At every step of a guarded beam search the second branch's logits equal a from-scratch forward
    of the distorted prompt followed by each beam's own tokens (so the branch's cache followed every
    reorder), and the search did reorder its beams."""
    case = get_case(name)
    calls = []
    original = SequentialBranch.logits

    def spy(self, input_ids):
        logits = original(self, input_ids)
        calls.append((input_ids.clone(), logits.clone()))
        return logits

    monkeypatch.setattr(SequentialBranch, "logits", spy)
    beams = 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)  # fused on every family
        out = halluguard.guard(case.model, "vcd", seed=2).generate(
            **case.clone_inputs(),
            max_new_tokens=NEW,
            num_beams=beams,
            do_sample=False,
            early_stopping="never",
            return_dict_in_generate=True,
        )
    assert out.sequences.shape[0] == 2 and len(calls) == NEW
    branch = VCDLogitsProcessor(branch=object(), seed=2).distort(
        family_of(case.model), case.model, case.clone_inputs()
    )
    expanded = expand_rows(name, branch, beams)
    prompt = case.inputs["input_ids"].shape[1]
    reordered = False
    for step, (ids, logits) in enumerate(calls):
        expected = full_logits(name, case.model, expanded, ids[:, prompt:])
        torch.testing.assert_close(logits, expected, atol=2e-4, rtol=1e-4, msg=f"step {step}")
        if step and not torch.equal(ids[:, :-1], calls[step - 1][0]):
            reordered = True
    assert reordered, "the test should make beam search reorder its beams"


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("execution, beams", [("batched", 1), ("sequential", 1), ("sequential", 2)])
def test_dict_outputs_carry_the_cache_as_plain_generate(name, execution, beams):
    case = get_case(name)
    kwargs = dict(
        max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, num_beams=beams, return_dict_in_generate=True
    )
    plain = case.model.generate(**case.clone_inputs(), **kwargs)
    guarded = halluguard.guard(case.model, "vdd", execution=execution).generate(
        **case.clone_inputs(), **kwargs
    )
    assert type(guarded) is type(plain)
    theirs, ours = compat.find_cache(plain), compat.find_cache(guarded)
    assert theirs is not None, f"plain generate returned no cache on transformers {compat.VERSION}"
    assert type(ours) is type(theirs), f"{type(ours).__name__} is not {type(theirs).__name__}"
    assert ours.get_seq_length() == theirs.get_seq_length()
    assert [k.shape for k, _ in compat.layer_tensors(ours)] == [
        k.shape for k, _ in compat.layer_tensors(theirs)
    ]
    assert compat.cache_key(guarded) == compat.cache_key(plain)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("beams", [1, 2])
def test_sequential_steps_share_the_main_forward(name, beams):
    """Fused steps: after the two prefills, one forward of the model per decoding step, not two,
    and the same tokens as the batched execution (or, with beams, as the unfused branch)."""
    case = get_case(name)
    target, _ = family_of(case.model).to_target(case.model, case.clone_inputs())
    kwargs = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, num_beams=beams)
    rows, hook = _forwards(target)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FallbackWarning)
            fused = halluguard.guard(case.model, "vdd", execution="sequential").generate(
                **case.clone_inputs(), **kwargs
            )
    finally:
        hook.remove()
    batch = case.inputs["input_ids"].shape[0] * beams
    assert len(rows) == 2 + (NEW - 1), rows  # main prefill, branch prefill, one joint forward per step
    assert rows[2:] == [2 * batch] * (NEW - 1), rows  # [main; branch] rows
    if beams == 1:
        reference = halluguard.guard(case.model, "vdd", execution="batched").generate(
            **case.clone_inputs(), **kwargs
        )
    else:
        processor = VDDLogitsProcessor(case.model, case.clone_inputs(), renormalize=True)  # unfused branch
        reference = case.model.generate(**case.clone_inputs(), **kwargs, logits_processor=[processor])
    assert torch.equal(fused, reference)
    assert not target._forward_hooks and not target._forward_pre_hooks


@pytest.mark.parametrize("name", ["llava", "qwen2_vl", "instructblip"])
def test_a_step_that_cannot_be_joined_says_so_once_and_stays_exact(name, monkeypatch):
    """Simulate a release whose caches the joint step does not know: two forwards per step, one
    warning naming the release and the cost, the same tokens."""
    case = get_case(name)
    kwargs = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, num_beams=2)
    processor = VDDLogitsProcessor(case.model, case.clone_inputs(), renormalize=True)
    reference = case.model.generate(**case.clone_inputs(), **kwargs, logits_processor=[processor])
    monkeypatch.setattr(compat, "plain_layers", lambda cache: False)
    target, _ = family_of(case.model).to_target(case.model, case.clone_inputs())
    rows, hook = _forwards(target)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = halluguard.guard(case.model, "vdd", execution="sequential").generate(
                **case.clone_inputs(), **kwargs
            )
    finally:
        hook.remove()
    fallbacks = [w for w in caught if issubclass(w.category, FallbackWarning)]
    assert fallbacks, "the fallback must be said"
    message = str(fallbacks[0].message)
    assert compat.VERSION in message and "2x" in message and "plain attention layers" in message
    assert len({str(w.message) for w in fallbacks}) == 1
    assert len(rows) == 2 + 2 * (NEW - 1), rows  # the branch's forward, then the main one
    assert torch.equal(out, reference)


def test_a_cache_implementation_keeps_the_branch_exact_and_says_so():
    case = get_case("llava")
    kwargs = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
    reference = halluguard.guard(case.model, "vdd", execution="batched").generate(
        **case.clone_inputs(), **kwargs
    )
    with pytest.warns(FallbackWarning, match="cache_implementation='static'"):
        out = halluguard.guard(case.model, "vdd", execution="sequential").generate(
            **case.clone_inputs(), **kwargs, cache_implementation="static"
        )
    assert torch.equal(out, reference)


def test_a_missing_cache_is_an_error_not_a_wrong_token(monkeypatch):
    """Simulate a release that moves the cache where the decoders cannot find it."""
    case = get_case("llava")
    kwargs = dict(max_new_tokens=NEW, do_sample=False, return_dict_in_generate=True)
    monkeypatch.setattr(compat, "find_cache", lambda mapping: None)
    for execution in ("batched", "sequential"):
        with pytest.raises(compat.CompatibilityError, match=f"transformers {compat.VERSION}.*cache"):
            halluguard.guard(case.model, "vdd", execution=execution).generate(**case.clone_inputs(), **kwargs)


def test_a_cache_passed_in_is_refused_with_what_to_do():
    from transformers import DynamicCache

    case = get_case("llava")
    with pytest.raises(halluguard.decoders.GuardError, match="pass no cache"):
        halluguard.guard(case.model, "vcd").generate(
            **case.clone_inputs(), max_new_tokens=2, **{compat.cache_keyword(case.model): DynamicCache()}
        )


def test_hooks_are_removed_when_generate_raises():
    case = get_case("llava")
    target = case.model

    class Boom(RuntimeError):
        pass

    def fail(input_ids, scores):
        if input_ids.shape[1] > case.inputs["input_ids"].shape[1] + 1:
            raise Boom
        return scores

    with pytest.raises(Boom):
        halluguard.guard(case.model, "vdd", execution="sequential").generate(
            **case.clone_inputs(), max_new_tokens=NEW, logits_processor=[fail]
        )
    assert not target._forward_hooks and not target._forward_pre_hooks


@pytest.mark.parametrize(
    "chain", ["to_device", "to_dtype", "eval", "float", "half", "train_false", "requires_grad_"]
)
def test_chained_calls_keep_the_mitigation(chain):
    case = BUILDERS["llava"]()  # its own model: .half() changes the weights
    guarded = halluguard.guard(case.model, "vdd", alpha=5.0, execution="sequential")
    chained = {
        "to_device": lambda g: g.to("cpu"),
        "to_dtype": lambda g: g.to(torch.float32),
        "eval": lambda g: g.eval(),
        "float": lambda g: g.float(),
        "half": lambda g: g.half().float(),
        "train_false": lambda g: g.train(False),
        "requires_grad_": lambda g: g.requires_grad_(False),
    }[chain](guarded)
    assert chained is guarded and "vdd" in repr(chained)
    kwargs = dict(max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
    plain = case.model.generate(**case.clone_inputs(), **kwargs)
    again = halluguard.guard(case.model, "vdd", alpha=5.0).generate(**case.clone_inputs(), **kwargs)
    assert not torch.equal(plain, again), "the test needs a method that changes the tokens"
    assert torch.equal(chained.generate(**case.clone_inputs(), **kwargs), again)
