"""A naive reference decoder: both branches recomputed from scratch, without a cache, every step.

It shares nothing with the code under test but the distorted inputs (built by the method's
``distort``, tested on its own in ``test_families.py``): positions, token types, image features
and the contrast formulas are written out here again.
"""

from __future__ import annotations

import math

import torch
from tiny_models import EOS, IMAGE, PAD, SUPPRESSED
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria
from transformers.generation.streamers import BaseStreamer


def expand_rows(name: str, inputs: dict, times: int) -> dict:
    """Each row of ``inputs`` repeated ``times`` times, images with them (as generate expands beams)."""
    out = {k: v.repeat_interleave(times, dim=0) for k, v in inputs.items()}
    if name.startswith("qwen"):  # flattened patches, per image: repeat image by image
        sizes = inputs["image_grid_thw"].prod(-1).tolist()
        patches = inputs["pixel_values"].split(sizes)
        out["pixel_values"] = torch.cat([p for p in patches for _ in range(times)])
    return out


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)


def full_logits(name: str, model, inputs: dict, generated: torch.Tensor) -> torch.Tensor:
    """Next-token logits of ``inputs`` followed by ``generated``, from one uncached forward."""
    return full_forward(name, model, inputs, generated).logits[:, -1].float()


def full_forward(name: str, model, inputs: dict, generated: torch.Tensor):
    """The uncached forward of ``inputs`` followed by ``generated``, with every layer's hidden states."""
    ids = torch.cat([inputs["input_ids"], generated], dim=1)
    mask = inputs.get("attention_mask")
    mask = torch.ones_like(inputs["input_ids"]) if mask is None else mask
    mask = torch.cat([mask, torch.ones_like(generated)], dim=1)
    positions = _positions(mask)
    images = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    with torch.no_grad():
        if name == "instructblip":
            embeds = model.get_input_embeddings()(ids)
            if "pixel_values" in images:
                features = model.get_image_features(
                    images["pixel_values"],
                    qformer_input_ids=images["qformer_input_ids"],
                    qformer_attention_mask=images["qformer_attention_mask"],
                    return_dict=True,
                ).pooler_output
                embeds = embeds.clone()
                embeds[ids == IMAGE] = features.reshape(-1, features.shape[-1])
            return model.language_model(
                inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False,
                output_hidden_states=True,
            )
        if name.startswith("qwen"):
            mm = torch.cat([images.pop("mm_token_type_ids"), torch.zeros_like(generated)], dim=1)
            extra = {} if "image_grid_thw" in images else {"position_ids": positions[None].expand(3, -1, -1)}
            return model(
                input_ids=ids, attention_mask=mask, mm_token_type_ids=mm, use_cache=False,
                output_hidden_states=True, **images, **extra,
            )
        if name == "paligemma":
            types = torch.cat([images.pop("token_type_ids"), torch.ones_like(generated)], dim=1)
            return model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions + 1,
                token_type_ids=types,
                use_cache=False,
                output_hidden_states=True,
                **images,
            )
        return model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
            output_hidden_states=True, **images,
        )


def vcd_formula(alpha: float, beta: float):
    def combine(scores, other, step):
        if alpha == 0:
            return scores
        out = (1 + alpha) * scores - alpha * other
        keep = torch.softmax(scores, -1) >= beta * torch.softmax(scores, -1).max(-1, keepdim=True).values
        return out.masked_fill(~keep, -math.inf)

    return combine


def m3id_formula(lam: float, alpha: float):
    def combine(scores, other, step):
        gamma = math.exp(-lam * step)
        if gamma == 1:  # the first token: no correction (and no 0 * inf on suppressed tokens)
            return scores
        unsure = torch.softmax(scores, -1).max(-1, keepdim=True).values < alpha
        return torch.where(unsure, scores + (1 - gamma) / gamma * (scores - other), scores)

    return combine


def naive_generate(
    name, model, inputs, branch, combine, max_new_tokens, do_sample=False, seed=0, logits=None
):
    """Decode ``max_new_tokens`` tokens (EOS-aware, as ``generate``), recomputing everything each step.

    ``logits(generated)`` gives the main rows' next-token logits (default: :func:`full_logits` of
    ``inputs``); ``branch`` None gives ``combine`` None for the other branch's."""
    rows = inputs["input_ids"].shape[0]
    generated = torch.zeros(rows, 0, dtype=torch.long)
    unfinished = torch.ones(rows, dtype=torch.long)
    main = logits or (lambda tokens: full_logits(name, model, inputs, tokens))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step in range(max_new_tokens):
            scores = main(generated)
            scores[:, SUPPRESSED] = -math.inf
            other = None if branch is None else full_logits(name, model, branch, generated)
            scores = combine(scores, other, step)
            if do_sample:
                tokens = torch.multinomial(torch.softmax(scores, -1), 1).squeeze(1)
            else:
                tokens = scores.argmax(-1)
            tokens = tokens * unfinished + PAD * (1 - unfinished)
            generated = torch.cat([generated, tokens[:, None]], dim=1)
            unfinished = unfinished & (tokens != EOS).long()
            if unfinished.max() == 0:
                break
    return torch.cat([inputs["input_ids"], generated], dim=1)


class Recorder(LogitsProcessor):
    """Keeps the sequences and the scores a decoding step is about to rank, at every step."""

    def __init__(self):
        self.steps: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, input_ids, scores):
        self.steps.append((input_ids.clone(), scores.clone()))
        return scores


def call_state(model):
    """What a guarded call must leave as it found: hook counts, per-call attention functions on the
    modules, and the attention implementation of every (sub-)config."""
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    attributes = sum(hasattr(m, "_halluguard_attention") for m in model.modules())
    configs = [model.config, *(getattr(model.config, k) for k in getattr(model.config, "sub_configs", {}))]
    return hooks, attributes, [getattr(c, "_attn_implementation", None) for c in configs]


class Boom(LogitsProcessor):
    """A logits processor that raises, to check what a call leaves behind when ``generate`` fails."""

    def __call__(self, input_ids, scores):
        raise RuntimeError("boom")


def sample_kwargs(do_sample: bool) -> dict:
    """``generate``'s arguments for plain sampling (no top-k cut) or greedy decoding."""
    return dict(do_sample=True, top_k=0) if do_sample else dict(do_sample=False)


def assert_matches_naive(guarded, name, inputs, naive_logits, new_tokens, do_sample, seed=3) -> None:
    """``guarded.generate(**inputs)`` decodes the tokens :func:`naive_generate` decodes with
    ``naive_logits(generated)``, with the same scores step by step (``guarded`` seeded with ``seed``)."""
    expected_scores = []

    def keep(scores, other, step):
        expected_scores.append(scores.clone())
        return scores

    reference = {k: v.clone() for k, v in inputs.items()}
    expected = naive_generate(
        name, None, reference, None, keep, new_tokens, do_sample=do_sample, seed=seed, logits=naive_logits
    )
    recorder = Recorder()
    out = guarded.generate(
        **{k: v.clone() for k, v in inputs.items()}, max_new_tokens=new_tokens, **sample_kwargs(do_sample),
        logits_processor=LogitsProcessorList([recorder]),
    )
    assert torch.equal(out, expected[:, : out.shape[1]]), do_sample
    for step, (_, scores) in enumerate(recorder.steps):
        torch.testing.assert_close(scores, expected_scores[step], atol=1e-5, rtol=1e-5)


class Chunks(BaseStreamer):
    """A streamer that keeps what it is given."""

    def __init__(self):
        self.chunks, self.ended = [], False

    def put(self, value):
        self.chunks.append(value.reshape(1, -1))

    def end(self):
        self.ended = True


class StopAfter(StoppingCriteria):
    """Stops every row once the sequences reach ``length``."""

    def __init__(self, length):
        self.length = length

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), input_ids.shape[1] >= self.length, dtype=torch.bool)
