"""For every family and method: the guarded ``generate`` decodes exactly what the naive reference does.

Each family's case is a left-padded batch of two prompts with an image each. The checks:
tokens identical to the from-scratch reference (greedy and sampling with a fixed seed), batched ==
sequential, ``alpha=0`` == plain ``model.generate``, the global RNG untouched, same seed same output.
"""

from __future__ import annotations

import pytest
import torch
from naive_reference import m3id_formula, naive_generate, sample_kwargs, vcd_formula
from tiny_models import get_case

import halluguard
from halluguard.decoders import METHODS, family_of

FAMILIES = ["llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3", "paligemma", "instructblip"]
NEW_TOKENS = 6
#: Strong settings so that the contrast visibly changes the tiny models' choices.
PARAMS = {
    "vcd": dict(alpha=1.0, beta=0.1, noise_step=500),
    "icd": dict(alpha=1.0, beta=0.1),
    "vdd": dict(alpha=1.0, beta=0.1),
    "m3id": dict(lam=1.0, alpha=0.9),
}


def _params(case, method):
    params = dict(PARAMS[method])
    if method == "icd":
        params["tokenizer"] = case.tokenizer
    return params


def _formula(method):
    p = PARAMS[method]
    return m3id_formula(p["lam"], p["alpha"]) if method == "m3id" else vcd_formula(p["alpha"], p["beta"])


def _branch_inputs(case, method, seed):
    """The distorted inputs, as the guard builds them (VCD's noise from the same seed)."""
    cls = METHODS[method]
    params = _params(case, method)
    if method == "vcd":
        params["seed"] = seed
    probe = cls(branch=object(), **params)
    return probe.distort(family_of(case.model), case.model, case.clone_inputs())


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("method", ["vcd", "icd", "vdd", "m3id"])
def test_greedy_and_sampling_match_the_naive_reference(name, method):
    case = get_case(name)
    for do_sample in (False, True):
        seed = 3
        expected = naive_generate(
            name,
            case.model,
            case.clone_inputs(),
            _branch_inputs(case, method, seed),
            _formula(method),
            NEW_TOKENS,
            do_sample=do_sample,
            seed=seed,
        )
        results = {}
        for execution in ("batched", "sequential"):
            guarded = halluguard.guard(
                case.model, method, seed=seed, execution=execution, **_params(case, method)
            )
            results[execution] = guarded.generate(
                **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(do_sample)
            )
        width = results["batched"].shape[1]
        assert torch.equal(results["batched"], expected[:, :width]), (name, method, do_sample)
        assert torch.equal(results["sequential"], results["batched"]), (name, method, do_sample)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_methods_change_the_output(name):
    """Guards against a branch that silently equals the original: some method must change the tokens."""
    case = get_case(name)
    plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS, do_sample=False)
    changed = []
    for method in PARAMS:
        out = halluguard.guard(case.model, method, seed=0, **_params(case, method)).generate(
            **case.clone_inputs(), max_new_tokens=NEW_TOKENS, do_sample=False
        )
        changed.append(not torch.equal(out, plain))
    assert sum(changed) >= 2, changed


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("do_sample", [False, True])
def test_alpha_zero_is_plain_generate(name, do_sample):
    case = get_case(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        plain = case.model.generate(
            **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(do_sample)
        )
    for method, off in (
        ("vcd", dict(alpha=0.0)),
        ("icd", dict(alpha=0.0, tokenizer=case.tokenizer)),
        ("vdd", dict(alpha=0.0)),
        ("m3id", dict(lam=0.0)),
    ):
        for execution in ("batched", "sequential"):
            out = halluguard.guard(case.model, method, seed=11, execution=execution, **off).generate(
                **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(do_sample)
            )
            assert torch.equal(out, plain), (method, execution)


@pytest.mark.parametrize("name", FAMILIES)
def test_global_rng_untouched_and_seeded_output_reproducible(name):
    case = get_case(name)
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    guarded = halluguard.guard(case.model, "vcd", seed=5)
    first = guarded.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS, do_sample=True, top_k=0)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = guarded.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS, do_sample=True, top_k=0)
    assert torch.equal(first, second)
    sequential = halluguard.guard(case.model, "vcd", seed=5, execution="sequential").generate(
        **case.clone_inputs(), max_new_tokens=NEW_TOKENS, do_sample=True, top_k=0
    )
    assert torch.equal(first, sequential)
    assert torch.equal(torch.random.get_rng_state(), before)
