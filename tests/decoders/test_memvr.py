"""MemVR on every family: the guarded ``generate`` decodes what a naive reference decodes.

The reference recomputes the whole sequence without a cache at every step, with its own hooks written
out here from the reference implementation's equations: the visual tokens are the input of the first
decoder block at the image placeholders; the newest position's top-10 entropy (over ``log 10``) is read
after the watched block (block 0 of the tiny models' 2, as 6-15 of 32) through the final norm and the
LM head; above the threshold, the next block's FFN output becomes ``(1 - r) FFN(x) + r (mean|FFN| /
mean|A|) A`` with ``A = (x W1^T) W2^T``, ``W1 = mean|W_up| / mean|Z| * Z``, ``W2 = mean|W_down| /
mean|Z| * Z^T`` (the reference's scaled memories). Without a cache, each position keeps the decision of
the forward that first computed it: the prompt's positions that of the prompt's forward (its last
position decides, its real positions share the means), each generated token its own step's. So the
logits after ``k`` generated tokens take ``k + 1`` full forwards, each deciding its newest segment.
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
    full_logits,
    naive_generate,
    sample_kwargs,
)
from tiny_models import BUILDERS, IMAGE, SUPPRESSED, get_case
from transformers import LogitsProcessorList, StoppingCriteriaList

import halluguard
from halluguard.decoders import GuardError, MemVR

FAMILIES = list(BUILDERS)
NEW_TOKENS = 6
RATIO = 0.5  # (a strong retracing, so that the scores move visibly)
WATCHED = 0  # the tiny models' watched block: 6-15 of 32 -> 0 of 2


class Naive:
    """What the naive reference retraces in the current full forward."""

    ratio, threshold = 0.0, 2.0
    image: list[list[int]] = []  # each row's image placeholder positions
    segments: list[list[list[int]]] = []  # each row's: the prompt's real positions, then one per token
    decided: list[list[int | None]] = []  # each row's retraced block of every segment but the newest
    newest: list[int | None] = []  # ... and of the newest, decided in this forward
    memory: list[torch.Tensor] = []
    entropies: list[float] = []


def _parts(model):
    """The text decoder's blocks and final norm (the module with token embeddings), and the LM head."""
    inner = next(m for m in model.modules() if all(hasattr(m, a) for a in ("embed_tokens", "layers", "norm")))
    return inner.layers, inner.norm, model.get_output_embeddings()


def _entropy(logits: torch.Tensor) -> float:
    top = torch.topk(logits.float(), 10).values
    p = torch.softmax(top, dim=-1)
    return float(torch.sum(-p * torch.log(p)) / math.log(10))


def _install(model):
    layers, norm, head = _parts(model)

    def remember(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        Naive.memory = [hidden[row, positions].float() for row, positions in enumerate(Naive.image)]

    def watch(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        for row in range(hidden.shape[0]):
            entropy = _entropy(head(norm(hidden[row, -1])))
            Naive.entropies.append(entropy)
            if Naive.newest[row] is None and entropy > Naive.threshold:
                Naive.newest[row] = WATCHED + 1

    def retrace(index):
        def hook(module, args, output):
            x, out = args[0], output.clone()
            for row in range(out.shape[0]):
                memory = Naive.memory[row]
                w1 = module.up_proj.weight.abs().mean() / memory.abs().mean() * memory
                w2 = module.down_proj.weight.abs().mean() / memory.abs().mean() * memory.T
                for segment, block in zip(Naive.segments[row], Naive.decided[row] + [Naive.newest[row]]):
                    if block != index:
                        continue
                    ffn = output[row, segment].float()
                    adapter = torch.matmul(torch.matmul(x[row, segment].float(), w1.T), w2.T)
                    adapter = ffn.abs().mean() / adapter.abs().mean() * adapter
                    out[row, segment] = ffn * (1 - Naive.ratio) + adapter * Naive.ratio
            return out

        return hook

    layers[0].register_forward_pre_hook(remember, with_kwargs=True)
    layers[WATCHED].register_forward_hook(watch)
    for index, layer in enumerate(layers):
        layer.mlp.register_forward_hook(retrace(index))


_NAIVE_MODELS: dict[str, torch.nn.Module] = {}


def naive_model(name):
    if name not in _NAIVE_MODELS:
        model = copy.deepcopy(get_case(name).model)
        _install(model)
        _NAIVE_MODELS[name] = model
    return _NAIVE_MODELS[name]


def naive_logits(name, inputs, generated, params):
    """The reference's next-token logits of ``inputs`` followed by ``generated``, and each row's
    decisions (retraced block or None) for the prompt and every generated token."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    rows, width = ids.shape
    Naive.ratio, Naive.threshold = params["retracing_ratio"], params["entropy_threshold"]
    Naive.image = [[i for i, token in enumerate(ids[row].tolist()) if token == IMAGE] for row in range(rows)]
    prompt = [[i for i in range(width) if mask[row, i]] for row in range(rows)]
    decided: list[list[int | None]] = [[] for _ in range(rows)]
    for k in range(generated.shape[1] + 1):
        Naive.segments = [[prompt[row]] + [[width + j] for j in range(k)] for row in range(rows)]
        Naive.decided, Naive.newest = decided, [None] * rows
        logits = full_logits(name, naive_model(name), inputs, generated[:, :k])
        for row in range(rows):
            decided[row].append(Naive.newest[row])
    Naive.decided, Naive.newest = [], []
    return logits, decided


_THRESHOLDS: dict[str, float] = {}


def threshold(name) -> float:
    """A threshold between the plain decoding's entropies: some steps retrace, others do not."""
    if name not in _THRESHOLDS:
        case = get_case(name)
        Naive.entropies = []
        naive_generate(
            name, None, case.clone_inputs(), None, lambda s, o, t: s, NEW_TOKENS,
            logits=lambda generated: naive_logits(name, case.clone_inputs(), generated, OFF)[0],
        )
        values = sorted(set(Naive.entropies))  # the widest gap in the middle half, so no step sits on it
        middle = range(len(values) // 4, max(3 * len(values) // 4, len(values) // 4 + 1))
        i = max(middle, key=lambda i: values[i + 1] - values[i])
        _THRESHOLDS[name] = (values[i] + values[i + 1]) / 2
    return _THRESHOLDS[name]


OFF = dict(retracing_ratio=RATIO, entropy_threshold=2.0)


def params(name) -> dict:
    return dict(retracing_ratio=RATIO, entropy_threshold=threshold(name))


@pytest.mark.parametrize("name", FAMILIES)
def test_greedy_and_sampling_match_the_naive_reference(name):
    case, settings = get_case(name), params(name)
    guarded = halluguard.guard(case.model, "memvr", seed=3, **settings)
    for do_sample in (False, True):
        inputs, decisions = case.clone_inputs(), []

        def naive(generated):
            out, decided = naive_logits(name, inputs, generated, settings)
            decisions[:] = decided
            return out

        assert_matches_naive(guarded, name, inputs, naive, NEW_TOKENS, do_sample)
        if not do_sample:  # the threshold splits the steps: both outcomes are checked
            flat = [block for row in decisions for block in row]
            assert WATCHED + 1 in flat and None in flat, flat


@pytest.mark.parametrize("name", FAMILIES)
def test_every_beam_is_retraced_from_its_own_sequence(name):
    case, beams, settings = get_case(name), 2, params(name)
    prompt = case.inputs["input_ids"].shape[1]
    recorder = Recorder()
    halluguard.guard(case.model, "memvr", **settings).generate(
        **case.clone_inputs(), max_new_tokens=4, num_beams=beams,
        logits_processor=LogitsProcessorList([recorder]),
    )
    inputs = expand_rows(name, case.clone_inputs(), beams)
    for step, (ids, scores) in enumerate(recorder.steps):
        # (beam search normalises first, then its processors suppress tokens)
        expected = naive_logits(name, inputs, ids[:, prompt:], settings)[0].log_softmax(-1)
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


@pytest.mark.parametrize("name", ["llava", "llava_next", "qwen2_vl", "idefics3", "paligemma", "instructblip"])
def test_a_padded_prompt_decodes_in_a_batch_as_alone(name):
    case = get_case(name)
    guarded = halluguard.guard(case.model, "memvr", retracing_ratio=RATIO, entropy_threshold=-1.0)
    runs = []
    for inputs in (case.clone_inputs(), _alone(name, 0)):
        recorder = Recorder()
        processors = LogitsProcessorList([recorder])
        out = guarded.generate(**inputs, max_new_tokens=NEW_TOKENS, logits_processor=processors)
        runs.append((out[0, -NEW_TOKENS:], torch.stack([scores[0] for _, scores in recorder.steps])))
    assert torch.equal(runs[0][0], runs[1][0])
    torch.testing.assert_close(runs[0][1], runs[1][1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", FAMILIES)
def test_retracing_moves_the_scores_and_the_neutral_settings_are_plain(name):
    case = get_case(name)
    runs = {}
    always = dict(retracing_ratio=RATIO, entropy_threshold=-1.0)
    never = dict(retracing_ratio=RATIO, entropy_threshold=0.999999)  # installed; nothing is that uncertain
    for label, runner in (
        ("plain", case.model),
        ("memvr", halluguard.guard(case.model, "memvr", **always)),
        ("zero", halluguard.guard(case.model, "memvr", retracing_ratio=0, entropy_threshold=-1.0)),
        ("never", halluguard.guard(case.model, "memvr", **never)),
    ):
        recorder = Recorder()
        processors = LogitsProcessorList([recorder])
        runner.generate(**case.clone_inputs(), max_new_tokens=3, logits_processor=processors)
        runs[label] = torch.stack([scores for _, scores in recorder.steps]).nan_to_num(0, 0, 0)
    assert (runs["memvr"] - runs["plain"]).abs().max() > 1e-3
    assert torch.equal(runs["zero"], runs["plain"])
    assert torch.equal(runs["never"], runs["plain"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        plain = case.model.generate(**case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(True))
    sampled = halluguard.guard(case.model, "memvr", seed=11, retracing_ratio=0).generate(
        **case.clone_inputs(), max_new_tokens=NEW_TOKENS, **sample_kwargs(True)
    )
    assert torch.equal(sampled, plain)


def test_streamer_and_stopping_criteria_see_the_guarded_tokens():
    name = "llava"
    inputs = _alone(name, 1)
    guarded = halluguard.guard(get_case(name).model, "memvr", **params(name))
    full = guarded.generate(**inputs, max_new_tokens=NEW_TOKENS)
    streamer = Chunks()
    streamed = guarded.generate(**_alone(name, 1), max_new_tokens=NEW_TOKENS, streamer=streamer)
    assert streamer.ended and torch.equal(streamed, full)
    assert torch.equal(torch.cat(streamer.chunks, dim=1), full)
    prompt = inputs["input_ids"].shape[1]
    stopped = guarded.generate(
        **_alone(name, 1), max_new_tokens=NEW_TOKENS,
        stopping_criteria=StoppingCriteriaList([StopAfter(prompt + 2)]),
    )
    assert torch.equal(stopped, full[:, : prompt + 2])


def test_nothing_outlives_the_call_also_when_it_raises_and_bad_values_are_refused():
    case = get_case("llava")
    case.model.generate(**case.clone_inputs(), max_new_tokens=1)  # (transformers' own hooks installed)
    before = call_state(case.model)

    guarded = halluguard.guard(case.model, "memvr", retracing_ratio=RATIO, entropy_threshold=-1.0)
    guarded.generate(**case.clone_inputs(), max_new_tokens=2)
    assert call_state(case.model) == before
    with pytest.raises(RuntimeError, match="boom"):
        guarded.generate(
            **case.clone_inputs(), max_new_tokens=2, logits_processor=LogitsProcessorList([Boom()])
        )
    assert call_state(case.model) == before
    with pytest.raises(ValueError, match="no decoder block to watch.*2 blocks"):
        halluguard.guard(case.model, "memvr", starting_layer=0, ending_layer=3).generate(
            **case.clone_inputs(), max_new_tokens=1
        )
    assert call_state(case.model) == before
    with pytest.raises(GuardError, match="MEMVR got unknown parameter"):
        halluguard.guard(case.model, "memvr", alpha=1)
    with pytest.raises(ValueError, match="retracing_ratio must be a number in"):
        MemVR(retracing_ratio=1.5)
    with pytest.raises(ValueError, match="entropy_threshold must be a finite number"):
        MemVR(entropy_threshold=math.nan)
    with pytest.raises(ValueError, match="none between them"):
        MemVR(starting_layer=3, ending_layer=4)
    with pytest.raises(ValueError, match="starting_layer must be None or an integer"):
        MemVR(starting_layer=-1)
