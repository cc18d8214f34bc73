"""OPERA on every family: the guarded beam search decodes what a naive reference decodes.

The reference recomputes everything each step without a cache (eager attention,
``output_attentions=True``): each beam's next-token logits, and for each candidate one full forward
of the sequence with the candidate, whose last-layer attention square gives the window, the column
scores, the summary location and the image mass. Its beam search and rollbacks are plain Python lists
(with torch's ``topk`` where ties must break as transformers breaks them).
"""

from __future__ import annotations

import copy
import math
from collections import Counter

import pytest
import torch
from naive_reference import Boom, Recorder
from tiny_models import (
    BUILDERS,
    EOS,
    IMAGE,
    IMAGE_TOKENS,
    SUPPRESSED,
    VOCAB,
    get_case,
)
from transformers import LogitsProcessorList
from transformers.generation.utils import GenerationMixin

import halluguard
from halluguard.decoders import OPERA, GuardError
from halluguard.decoders.families import family_of
from halluguard.decoders.opera import opera_generate
from halluguard.decoders.opera_search import SearchRecord
from halluguard.decoders.readout import TextStack

FAMILIES = list(BUILDERS)
NEW = 12
#: OPERA's parameters and the reference's defaults.
DEFAULTS = dict(scale_factor=50.0, threshold=15, num_attn_candidates=5, penalty_weights=1.0)
DEFAULTS.update(window_size=512, retrospection=True)
#: A penalty strong enough to change what is decoded.
PENALTY = dict(scale_factor=40.0, penalty_weights=20.0, threshold=15)
_EAGER: dict[tuple[str, torch.dtype], torch.nn.Module] = {}


def eager(name, dtype=torch.float32):
    """A copy of the family's tiny model with eager attention (OPERA reads the attention weights).

    Its LM head gives the placeholder ids a logit of 0, so that they are never among the top
    candidates: the reference's from-scratch forward would take a generated placeholder for an image.
    """
    if (name, dtype) not in _EAGER:
        model = copy.deepcopy(get_case(name).model).to(dtype)
        model.set_attn_implementation("eager")
        with torch.no_grad():
            model.get_output_embeddings().weight[SUPPRESSED] = 0.0
        _EAGER[name, dtype] = model
    return _EAGER[name, dtype]


def single(name, row=1, dtype=torch.float32):
    """Prompt ``row`` of the family's batch alone, without padding (row 1 is the longest: none), its
    images in ``dtype``."""
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
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in out.items()}


def attention_forward(name, model, inputs, generated):
    """Uncached forward of the prompt and ``generated`` ``[rows, n]``: last logits, last layer's attention."""
    generated = torch.tensor(generated, dtype=torch.long).reshape(len(generated), -1)
    rows = generated.shape[0]
    ids = torch.cat([inputs["input_ids"].expand(rows, -1), generated], dim=1)
    positions = torch.arange(ids.shape[1])[None].expand(rows, -1)
    images = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    if name.startswith("qwen"):
        images["pixel_values"] = images["pixel_values"].repeat(rows, 1)
        images["image_grid_thw"] = images["image_grid_thw"].repeat(rows, 1)
    else:
        images = {k: v.expand(rows, *v.shape[1:]) for k, v in images.items()}
    common = dict(use_cache=False, output_attentions=True)
    with torch.no_grad():
        if name == "instructblip":
            features = model.get_image_features(
                images["pixel_values"], qformer_input_ids=images["qformer_input_ids"],
                qformer_attention_mask=images["qformer_attention_mask"], return_dict=True,
            ).pooler_output
            embeds = model.get_input_embeddings()(ids).clone()
            embeds[ids == IMAGE] = features.reshape(-1, features.shape[-1])
            out = model.language_model(inputs_embeds=embeds, position_ids=positions, **common)
        elif name.startswith("qwen"):
            mm = images.pop("mm_token_type_ids").expand(rows, -1)
            mm = torch.cat([mm, torch.zeros_like(generated)], dim=1)
            out = model(input_ids=ids, mm_token_type_ids=mm, **images, **common)
        elif name == "paligemma":
            types = torch.cat([images.pop("token_type_ids"), torch.ones_like(generated)], dim=1)
            out = model(input_ids=ids, position_ids=positions + 1, token_type_ids=types, **images, **common)
            # (PaliGemma's positions start at 1)
        else:
            out = model(input_ids=ids, position_ids=positions, **images, **common)
    return out.logits[:, -1].float(), out.attentions[-1]




def smallest_mode(values):
    counts = Counter(values)
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


def penalised(name, model, inputs, sequences, logits, p):
    """Per beam: candidates, their penalised scores, and their summary locations (from full forwards)."""
    prompt = inputs["input_ids"][0].tolist()
    images = [i for i, token in enumerate(prompt) if token in IMAGE_TOKENS]
    scores, candidates = torch.topk(logits, p["num_attn_candidates"], dim=-1)
    extended = [seq + [int(c)] for b, seq in enumerate(sequences) for c in candidates[b]]
    _, attention = attention_forward(name, model, inputs, extended)
    square = attention.max(dim=1).values  # [rows, S, S]: max over heads
    square = square / square.sum(-1, keepdim=True)
    width = len(sequences[0]) + 1
    penalties, locations = [], []
    for r in range(len(extended)):
        local = p["scale_factor"] * square[r, len(prompt) :, len(prompt) :]
        columns = torch.zeros(width, dtype=torch.float16)
        for j in range(width):
            columns[j] = (1e-7 * local[j:, j].prod()).to(torch.float32)
        best = columns.max()
        locations.append(int((columns == best).nonzero()[0]))
        # short answers: a bonus for the candidate's attention to the image
        over_trust = -square[r, -1, images].sum() if width <= 10 else best
        penalties.append((p["penalty_weights"] * over_trust).float())
    if p["penalty_weights"]:
        scores = scores - torch.stack(penalties).reshape(scores.shape)
    return candidates, scores, torch.tensor(locations).reshape(scores.shape)


def naive_opera(name, model, inputs, p, beams, new):
    """OPERA's beam search from scratch each step; returns the best sequence and the rollbacks."""
    p = {**DEFAULTS, **p}
    size, limit, vocab = p["window_size"], p["num_attn_candidates"], None
    sequences = [[] for _ in range(beams)]
    scores = torch.tensor([0.0] + [-1e9] * (beams - 1))
    done = dict(seqs=[[] for _ in range(beams)], scores=torch.full((beams,), -1e9), fin=[False] * beams)
    improvable, parents, tokens = True, None, None
    history, locs_history, times, rejected, rollbacks = [], [], [0] * size, [None] * size, []
    while True:
        logits, _ = attention_forward(name, model, inputs, sequences)
        vocab = logits.shape[-1]
        candidates, candidate_scores, locations = penalised(name, model, inputs, sequences, logits, p)
        snap = dict(seqs=[list(s) for s in sequences], scores=scores, done=copy.deepcopy(done))
        snap.update(improvable=improvable, parents=parents, tokens=tokens)
        modes = [smallest_mode(locations[b].tolist()) for b in range(beams)]
        loc = smallest_mode(modes)
        locs_history.append(modes)
        if len(history) >= size:
            history.pop(0)
        history.append(snap)
        final = None
        length = len(sequences[0]) + 1
        counts = [sum(h[b] == loc for h in locs_history) for b in range(beams)]
        fired = all(count > p["threshold"] for count in counts) and loc >= 10
        if p["retrospection"] and fired and loc + 1 < size:
            pos = loc + 1
            if times[pos] >= limit:
                pos -= 1
            if times[pos] < limit:
                times[pos] += 1
                if length - pos > size + 1:
                    pos = max(1, length - size - 1)
                for j in range(length - pos - 2):
                    history.pop()
                    locs_history.pop()
                    rejected[-(j + 1)] = None
                back, undone = history[-2], history[-1]
                sequences, scores = [list(s) for s in back["seqs"]], back["scores"]
                done, improvable = copy.deepcopy(back["done"]), back["improvable"]
                history.pop()
                locs_history.pop()
                rollbacks.append((length, pos))
                logits, _ = attention_forward(name, model, inputs, sequences)
                rejected[pos + 1] = None
                undone_pairs = zip(undone["parents"], undone["tokens"])
                rejected[pos] = reject = (rejected[pos] or []) + [b * vocab + t for b, t in undone_pairs]
                final = (logits - (999.0 + logits.min(-1, keepdim=True).values)).reshape(-1)
                final[reject] = -999.0
                final = final.reshape(beams, vocab)
        if final is None:
            final = torch.full((beams, vocab), -999.0)
            for b in range(beams):
                final[b, candidates[b]] = candidate_scores[b]
        log_probs = final.log_softmax(-1)
        log_probs[:, SUPPRESSED] = -math.inf
        top, index = torch.topk((log_probs + scores[:, None]).reshape(-1), 2 * beams)
        options = [(sequences[i // vocab] + [i % vocab], int(i // vocab), i % vocab) for i in index.tolist()]
        hits = torch.tensor([o[0][-1] == EOS or len(o[0]) >= new for o in options])
        alive = top + hits.float() * -1e9
        chosen = torch.topk(alive, beams)[1].tolist()
        cur = len(sequences[0])
        finishing = hits.clone()
        finishing[beams:] = False
        normalised = top / (cur + 1) + float(not improvable) * -1e9 + (~finishing) * -1e9
        merged = torch.cat([done["scores"], normalised])
        best = torch.topk(merged, beams)[1].tolist()
        pool = done["seqs"] + [o[0] for o in options]
        fins = done["fin"] + finishing.tolist()
        done = {"seqs": [pool[i] for i in best], "scores": merged[best], "fin": [fins[i] for i in best]}
        sequences = [options[i][0] for i in chosen]
        parents, tokens = [options[i][1] for i in chosen], [options[i][2] for i in chosen]
        scores = alive[chosen]
        worst = [done["scores"].min() if f else -1e9 for f in done["fin"]]
        improvable = improvable and any(scores[0] / (cur + 1) > w for w in worst)
        if not improvable or bool(hits.all()):
            return done["seqs"][0], rollbacks


def guarded_tokens(name, params, beams, new, record=None, inputs=None):
    inputs = single(name) if inputs is None else inputs
    kwargs = dict(max_new_tokens=new, num_beams=beams)
    out = opera_generate(eager(name), OPERA(**params), inputs, kwargs, record)
    return out[0, inputs["input_ids"].shape[1] :].tolist()


def _trim(tokens):
    """The generated tokens up to the first EOS, with it (beam search fills after it with EOS: pad is 0)."""
    return tokens[: tokens.index(EOS) + 1] if EOS in tokens else tokens


@pytest.mark.parametrize("name", FAMILIES)
def test_guarded_opera_matches_the_naive_reference(name):
    params = dict(num_attn_candidates=5, **PENALTY)
    for beams in (1, 3):
        expected, _ = naive_opera(name, eager(name), single(name), params, beams, NEW)
        assert _trim(guarded_tokens(name, params, beams, NEW)) == expected, beams


#: Column scores of order 1 from the 11th token on, so that the window's penalty counts.
LATE = dict(scale_factor=120.0, num_attn_candidates=4)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_beam_is_penalised_from_its_own_window(name):
    """Step by step, each beam's scores are those the reference computes from that beam's sequence.

    In float64: the column scores are products of 11 and more factors, stored in float16 as in the
    reference, so float32's rounding can move one by a float16 step (0.125 at 130)."""
    model, inputs, recorder = eager(name, torch.float64), single(name, dtype=torch.float64), Recorder()
    prompt = inputs["input_ids"].shape[1]
    kwargs = dict(max_new_tokens=14, num_beams=3, logits_processor=LogitsProcessorList([recorder]))
    opera_generate(model, OPERA(**LATE), inputs, kwargs)
    assert len(recorder.steps) == 14
    p = {**DEFAULTS, **LATE}
    for step, (ids, scores) in enumerate(recorder.steps):
        sequences = ids[:, prompt:].tolist()
        logits, _ = attention_forward(name, model, inputs, sequences)
        candidates, candidate_scores, _ = penalised(name, model, inputs, sequences, logits, p)
        expected = torch.full_like(logits, -999.0).scatter(-1, candidates, candidate_scores).log_softmax(-1)
        expected[:, SUPPRESSED] = -math.inf
        torch.testing.assert_close(scores, expected, atol=2e-3, rtol=2e-3, msg=f"step {step}")


def test_the_penalty_changes_the_tokens():
    changed = []
    for name in FAMILIES:
        plain = eager(name).generate(**single(name), max_new_tokens=NEW, num_beams=3)[0, -NEW:].tolist()
        changed.append(_trim(plain) != _trim(guarded_tokens(name, dict(PENALTY), 3, NEW)))
    assert any(changed)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_loop_without_penalty_is_transformers_beam_search(name):
    """All tokens as candidates, no penalty, no rollback: what generate's beam search decodes."""
    case = get_case(name)
    off = OPERA(penalty_weights=0, retrospection=False, num_attn_candidates=VOCAB)
    variants = [dict(max_new_tokens=8), dict(max_length=24, length_penalty=0.5, early_stopping=True)]
    for beams, variant in [(1, variants[0]), (3, variants[0]), (1, variants[1]), (3, variants[1])]:
        kwargs = dict(variant, num_beams=beams, num_return_sequences=min(beams, 2))
        kwargs["return_dict_in_generate"] = True
        # generate's num_beams=1 is greedy search; a width-1 beam search is its _beam_search
        width_one = dict(custom_generate=GenerationMixin._beam_search) if beams == 1 else {}
        # (generate gives sequences_scores with output_scores only)
        plain = case.model.generate(**case.clone_inputs(), **kwargs, **width_one, output_scores=True)
        out = opera_generate(case.model, off, case.clone_inputs(), kwargs)
        assert torch.equal(out.sequences, plain.sequences), kwargs
        # (generate decodes the left-padded batch at once; the guard, each prompt without its padding)
        torch.testing.assert_close(out.sequences_scores, plain.sequences_scores, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_off_switch_is_plain_generate(name):
    case = get_case(name)
    guarded = halluguard.guard(case.model, "opera", penalty_weights=0, retrospection=False)
    for kwargs in (dict(), dict(num_beams=3)):
        plain = case.model.generate(**case.clone_inputs(), max_new_tokens=6, **kwargs)
        assert torch.equal(guarded.generate(**case.clone_inputs(), max_new_tokens=6, **kwargs), plain)


#: Tiny PaliGemma's summary location repeats at 11 and 12 with these (a natural trigger, one beam).
OVER_TRUST = dict(scale_factor=20.0, threshold=1, num_attn_candidates=3)
#: With a small scale the newest column always wins: from 10 tokens on, every step rolls back (threshold
#: 0) until each position has used its ``num_attn_candidates`` rollbacks.
EVERY_STEP = dict(scale_factor=10.0, threshold=0, num_attn_candidates=3)


ROLLBACK_CASES = [("paligemma", OVER_TRUST, 1, 20), ("idefics3", EVERY_STEP, 1, 16)]
ROLLBACK_CASES += [(name, EVERY_STEP, 3, 16) for name in ("llava", "qwen2_vl", "instructblip")]


@pytest.mark.parametrize("name, params, beams, new", ROLLBACK_CASES)
def test_rollbacks_happen_and_match_the_naive_reference(name, params, beams, new):
    record = SearchRecord()
    tokens = guarded_tokens(name, params, beams, new, record)
    expected, rollbacks = naive_opera(name, eager(name), single(name), params, beams, new)
    assert len(rollbacks) >= 6 and [r[1:] for r in record.rollbacks] == rollbacks
    assert _trim(tokens) == expected


@pytest.mark.parametrize("beams", [1, 2])
def test_a_batch_decodes_each_prompt_as_alone(beams):
    case = get_case("llava")
    guarded = halluguard.guard(eager("llava"), "opera", **PENALTY)
    batch = guarded.generate(**case.clone_inputs(), max_new_tokens=NEW, num_beams=beams)
    width = case.inputs["input_ids"].shape[1]
    for row in range(2):
        alone = {k: v[row : row + 1] for k, v in case.clone_inputs().items()}
        single_row = guarded.generate(**alone, max_new_tokens=NEW, num_beams=beams)
        assert torch.equal(batch[row, : single_row.shape[1]], single_row[0])
        assert (batch[row, single_row.shape[1] :] == EOS).all()
        prompt = single("llava", row)
        unpadded = guarded.generate(**prompt, max_new_tokens=NEW, num_beams=beams)
        generated = unpadded[0, prompt["input_ids"].shape[1] :].tolist()
        assert batch[row, width : width + len(generated)].tolist() == generated


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _installed(model):
    names = getattr(model.config, "sub_configs", {})
    configs = [model.config, *(getattr(model.config, name) for name in names)]
    return _hooks(model), [getattr(config, "_attn_implementation", None) for config in configs]


def test_hooks_are_gone_and_attention_untouched_after_the_call_also_when_it_raises():
    model = eager("llava")
    model.generate(**single("llava"), max_new_tokens=1)  # (transformers hooks in on a first run)
    before = _installed(model)
    guarded = halluguard.guard(model, "opera", **PENALTY)
    guarded.generate(**single("llava"), max_new_tokens=3, num_beams=2)

    with pytest.raises(RuntimeError, match="boom"):
        guarded.generate(**single("llava"), max_new_tokens=3, logits_processor=LogitsProcessorList([Boom()]))
    assert _installed(model) == before


def sdpa(name):
    """The eager copy of the family's model, loaded as users load it: SDPA attention; run once, so that
    transformers has installed its own output-capturing hooks."""
    model = copy.deepcopy(eager(name))
    model.set_attn_implementation("sdpa")
    model.generate(**single(name), max_new_tokens=1)
    return model


@pytest.mark.parametrize("name", FAMILIES)
def test_an_sdpa_model_runs_only_its_last_layer_eager_for_the_call(name):
    """Same tokens as the eager model; during the call the last layer alone returns weights; after it
    the model's attention is what it was, also when the call raises."""
    model = sdpa(name)
    before = _installed(model)
    stack = TextStack.of(family_of(model).to_target(model, single(name))[0])
    returned = []

    def weights_returned(module, args, output):
        returned.append(isinstance(output, tuple) and isinstance(output[1], torch.Tensor))

    handles = [block.self_attn.register_forward_hook(weights_returned) for block in stack.blocks]
    try:
        out = opera_generate(model, OPERA(**PENALTY), single(name), dict(max_new_tokens=NEW, num_beams=3))
    finally:
        for handle in handles:
            handle.remove()
    layers = len(stack.blocks)
    assert returned and all(r == (i % layers == layers - 1) for i, r in enumerate(returned))
    tokens = out[0, single(name)["input_ids"].shape[1] :].tolist()
    assert _trim(tokens) == _trim(guarded_tokens(name, dict(PENALTY), 3, NEW))
    assert _installed(model) == before

    with pytest.raises(RuntimeError, match="boom"):
        opera_generate(model, OPERA(), single(name), dict(max_new_tokens=3, logits_processor=[Boom()]))
    assert _installed(model) == before


def test_what_opera_cannot_do_is_refused_clearly():
    case = get_case("llava")
    case.model.generate(**case.clone_inputs(), max_new_tokens=1)
    last = TextStack.of(case.model).blocks[-1].self_attn
    handle = last.register_forward_hook(lambda module, args, output: (output[0], None))
    before = _hooks(case.model)
    try:
        with pytest.raises(GuardError, match="attention returns none"):
            halluguard.guard(case.model, "opera").generate(**case.clone_inputs(), max_new_tokens=2)
    finally:
        handle.remove()
    assert _hooks(case.model) == before - 1
    guarded = halluguard.guard(eager("llava"), "opera")
    with pytest.raises(GuardError, match="beam search: do_sample=True"):
        guarded.generate(**single("llava"), max_new_tokens=2, do_sample=True)
    with pytest.raises(GuardError, match="does not stream"):
        guarded.generate(**single("llava"), max_new_tokens=2, streamer=object())
    with pytest.raises(GuardError, match="output_scores not available with OPERA"):
        guarded.generate(**single("llava"), max_new_tokens=2, return_dict_in_generate=True, output_scores=1)
    out = guarded.generate(**single("llava"), max_new_tokens=2, num_beams=2, return_dict_in_generate=True)
    assert out.sequences.shape[0] == 1 and out.sequences_scores.shape == (1,)
    with pytest.raises(ValueError, match="OPERA: num_attn_candidates must be an integer >= 2"):
        halluguard.guard(case.model, "opera", num_attn_candidates=1)
    with pytest.raises(GuardError, match="unknown parameter.*alpha"):
        halluguard.guard(case.model, "opera", alpha=1.0)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_lookahead_decodes_each_candidate_as_a_forward_of_it_alone(name):
    """Candidates side by side in one forward (a custom 4D mask, which transformers must pass through
    as given): the logits and cache entries of each are those of a step of it alone."""
    from halluguard.decoders import compat
    from halluguard.decoders.opera_lookahead import keep_chosen, lookahead

    model, inputs = eager(name), single(name)
    target, main = family_of(model).to_target(model, inputs)
    candidates = torch.tensor([[3, 17, 40, 41]])
    found = {}

    def loop(model, input_ids, logits_processor, stopping_criteria, generation_config, **kwargs):
        outputs = model(**compat.step_inputs(model, input_ids, kwargs, first=True), return_dict=True)
        kwargs = compat.advance(model, kwargs, outputs)
        cache = compat.find_cache(kwargs)
        prefix = [keys.clone() for keys, _ in compat.layer_tensors(cache)]
        ahead = lookahead(model, input_ids, kwargs, candidates, None)
        keep_chosen(cache, torch.tensor([0]), torch.tensor([2]), ahead.cached)
        found["kept"] = [keys for keys, _ in compat.layer_tensors(cache)]
        cache.crop(-1)
        for index in range(candidates.shape[1]):
            ids = torch.cat([input_ids, candidates[:, index : index + 1]], dim=-1)
            alone = model(**compat.step_inputs(model, ids, kwargs), return_dict=True)
            torch.testing.assert_close(
                ahead.logits[0, index], alone.logits[0, -1].float(), atol=1e-5, rtol=1e-5,
                msg=f"transformers {compat.VERSION}: candidate {index}'s logits (custom 4D masks ignored?)",
            )
            if index == 2:
                found["alone"] = [keys for keys, _ in compat.layer_tensors(cache)]
            cache.crop(-1)
        found["prefix"] = prefix
        return input_ids

    with torch.no_grad():
        target.generate(**main, max_new_tokens=1, custom_generate=loop)
    for kept, alone, prefix in zip(found["kept"], found["alone"], found["prefix"]):
        assert kept.shape == alone.shape and torch.equal(kept[:, :, :-1], prefix)
        torch.testing.assert_close(kept, alone, atol=1e-5, rtol=1e-5)
