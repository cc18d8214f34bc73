"""DoLa and DeCo on every family: the guarded ``generate`` decodes what a naive reference does.

The reference recomputes the whole sequence each step (``output_hidden_states=True``, no cache) and
writes the papers' formulas out again, row by row: DoLa's premature layer by Jensen-Shannon
divergence and its relative-top contrast; DeCo's candidates, anchor layer and correction. Beam
search is checked step by step: the scores the search ranks are the log-softmax of the reference's
corrected logits for each beam's own sequence.
"""

from __future__ import annotations

import math

import pytest
import torch
from naive_reference import Boom, Recorder, expand_rows, full_forward
from tiny_models import BUILDERS, EOS, PAD, SUPPRESSED, get_case
from transformers import LogitsProcessorList

import halluguard
from halluguard.decoders import GuardError

FAMILIES = list(BUILDERS)
NEW = 6
PARAMS = {
    "dola": [{"dola_layers": [0, 1]}, {"dola_layers": "low", "relative_top": 0.05}],
    "deco": [{"alpha": 2.0, "early_exit_layers": [0, 1]}, {"alpha": 0.6}],
}


def _text_parts(name, model):
    target = model.language_model if name == "instructblip" else model
    return target.get_output_embeddings(), target.get_decoder().norm, len(target.get_decoder().layers)


def _js(p_logits, q_logits):
    p, q = p_logits.softmax(-1), q_logits.softmax(-1)
    m = (p + q) / 2
    return 0.5 * (m * (m.log() - p.log())).sum() + 0.5 * (m * (m.log() - q.log())).sum()


def dola_reference(name, model, final, hidden, dola_layers=(0, 1), relative_top=0.1):
    head, _, n = _text_parts(name, model)
    layers = [0] if dola_layers == "low" else list(dola_layers)  # "low" on 2 untied blocks: range(0, 1, 2)
    if dola_layers == "low" and head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr():
        layers = [1]  # tied: the embedding exit is skipped; 2 blocks start at 1
    out = torch.full_like(final, -math.inf)
    for r in range(final.shape[0]):
        exits = [head(hidden[i][r, -1]).float() for i in layers]
        base = max(exits, key=lambda e: float(_js(final[r], e))) if len(exits) > 1 else exits[0]
        log_final, log_base = final[r].log_softmax(-1), base.log_softmax(-1)
        keep = log_final >= log_final.max() + math.log(relative_top)
        out[r, keep] = (log_final - log_base)[keep]
    return out


def deco_reference(name, model, final, hidden, alpha=0.6, early_exit_layers=None, top_p=0.9, top_k=20):
    head, norm, n = _text_parts(name, model)
    layers = early_exit_layers or [1]  # round(5 * 2 / 8) .. round(7 * 2 / 8), within the 2 blocks
    out = torch.full_like(final, -math.inf)
    for r in range(final.shape[0]):
        probs = final[r].softmax(-1)
        candidates, total = [], 0.0
        for token in probs.argsort(descending=True)[:top_k].tolist():
            candidates.append(token)
            total += float(probs[token])
            if total >= top_p:
                break
        best, anchor = -1.0, None
        for i in layers:
            logits = head(norm(hidden[i][r, -1])).float()
            p = logits.softmax(-1)
            for token in candidates:
                if float(p[token]) > best:
                    best, anchor = float(p[token]), logits
        out[r, candidates] = final[r, candidates] + alpha * best * anchor[candidates]
    return out


REFERENCES = {"dola": dola_reference, "deco": deco_reference}


def _reference_kwargs(method, params):
    if method == "dola":
        return {k: v for k, v in params.items()}
    renamed = {"early_exit_layers": "early_exit_layers", "alpha": "alpha"}
    return {renamed[k]: v for k, v in params.items()}


def corrected(name, method, params, model, inputs, generated):
    out = full_forward(name, model, inputs, generated)
    final = out.logits[:, -1].float()
    return REFERENCES[method](name, model, final, out.hidden_states, **_reference_kwargs(method, params))


def naive_generate(name, method, params, model, inputs, do_sample, seed):
    rows = inputs["input_ids"].shape[0]
    generated = torch.zeros(rows, 0, dtype=torch.long)
    unfinished = torch.ones(rows, dtype=torch.long)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for _ in range(NEW):
            scores = corrected(name, method, params, model, inputs, generated)
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
@pytest.mark.parametrize("method", ["dola", "deco"])
def test_greedy_and_sampling_match_the_naive_reference(name, method):
    case = get_case(name)
    prompt = case.inputs["input_ids"].shape[1]
    for params in PARAMS[method]:
        for do_sample in (False, True):
            kwargs = dict(do_sample=True, top_k=0) if do_sample else dict(do_sample=False)
            out = halluguard.guard(case.model, method, seed=5, **params).generate(
                **case.clone_inputs(), max_new_tokens=NEW, **kwargs
            )
            expected = naive_generate(name, method, params, case.model, case.clone_inputs(), do_sample, 5)
            assert out[:, prompt:].tolist() == expected.tolist(), (params, do_sample)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("method", ["dola", "deco"])
def test_beam_search_ranks_the_corrected_distribution_of_every_beam(name, method):
    case = get_case(name)
    params, beams = PARAMS[method][0], 3
    recorder = Recorder()
    halluguard.guard(case.model, method, **params).generate(
        **case.clone_inputs(),
        max_new_tokens=NEW,
        num_beams=beams,
        do_sample=False,
        early_stopping="never",
        logits_processor=LogitsProcessorList([recorder]),
    )
    assert len(recorder.steps) == NEW
    expanded = expand_rows(name, case.clone_inputs(), beams)
    prompt = case.inputs["input_ids"].shape[1]
    with torch.no_grad():
        for step, (ids, scores) in enumerate(recorder.steps):
            expected = corrected(name, method, params, case.model, expanded, ids[:, prompt:]).log_softmax(-1)
            expected[:, SUPPRESSED] = -math.inf
            # contrasts of log-probabilities: cached and uncached forwards differ by ~1e-3 there
            torch.testing.assert_close(scores, expected, atol=5e-3, rtol=1e-4, msg=f"step {step}")


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("method, off", [("dola", {"dola_layers": []}), ("deco", {"alpha": 0.0})])
def test_the_off_switch_is_plain_generate_and_the_method_changes_tokens(name, method, off):
    case = get_case(name)
    for kwargs in (dict(do_sample=False), dict(do_sample=False, num_beams=2)):
        plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW, **kwargs)
        guarded = halluguard.guard(case.model, method, **off).generate(
            **case.clone_inputs(), max_new_tokens=NEW, **kwargs
        )
        assert torch.equal(plain, guarded)


def test_the_methods_change_the_tokens():
    """On the tiny models the corrections are strong enough to change what is decoded."""
    changed = set()
    for name in FAMILIES:
        case = get_case(name)
        plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW, do_sample=False)
        for method in ("dola", "deco"):
            out = halluguard.guard(case.model, method, **PARAMS[method][0]).generate(
                **case.clone_inputs(), max_new_tokens=NEW, do_sample=False
            )
            if not torch.equal(plain, out):
                changed.add(method)
    assert changed == {"dola", "deco"}


@pytest.mark.parametrize("method", ["dola", "deco"])
def test_a_row_decodes_the_same_alone_and_in_a_batch(method):
    case = get_case("llava")
    params = PARAMS[method][0]
    batch = halluguard.guard(case.model, method, **params).generate(
        **case.clone_inputs(), max_new_tokens=NEW, do_sample=False
    )
    alone = {k: v[1:] for k, v in case.clone_inputs().items()}
    single = halluguard.guard(case.model, method, **params).generate(
        **alone, max_new_tokens=NEW, do_sample=False
    )
    assert batch[1, -NEW:].tolist() == single[0, -NEW:].tolist()


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("method", ["dola", "deco"])
def test_hooks_are_gone_after_the_call_also_when_it_raises(method):
    case = get_case("llava")
    before = _hooks(case.model)
    guarded = halluguard.guard(case.model, method, **PARAMS[method][0])
    guarded.generate(**case.clone_inputs(), max_new_tokens=2)
    assert _hooks(case.model) == before

    with pytest.raises(RuntimeError, match="boom"):
        guarded.generate(
            **case.clone_inputs(), max_new_tokens=2, logits_processor=LogitsProcessorList([Boom()])
        )
    assert _hooks(case.model) == before


def test_bad_parameters_and_layers_are_named():
    case = get_case("llava")
    with pytest.raises(GuardError, match="unknown parameter.*dola_layers"):
        halluguard.guard(case.model, "deco", dola_layers="low")
    with pytest.raises(ValueError, match="dola_layers must be 'low', 'high'"):
        halluguard.guard(case.model, "dola", dola_layers="middle")
    with pytest.raises(ValueError, match="threshold_top_p"):
        halluguard.guard(case.model, "deco", threshold_top_p=0)
    with pytest.raises(ValueError, match=r"layer\(s\) \[5\] out of range.*2 blocks"):
        halluguard.guard(case.model, "deco", early_exit_layers=[5]).generate(
            **case.clone_inputs(), max_new_tokens=1
        )
    with pytest.raises(GuardError, match="pass dola_layers to guard"):
        halluguard.guard(case.model, "dola").generate(
            **case.clone_inputs(), max_new_tokens=1, dola_layers="high"
        )
