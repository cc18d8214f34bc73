"""One test per assumption ``halluguard.decoders.compat`` makes about transformers.

When a release changes one of them, the failing test names the assumption and the release: that is
the place to adapt (``compat.py``), and nothing else in the decoders needs to know.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from tiny_models import get_case
from transformers import GenerationConfig
from transformers.cache_utils import Cache, DynamicCache

from halluguard.decoders import compat
from halluguard.decoders.branch import capture

RELEASE = f"transformers {compat.VERSION}"


def _prepared(case, **generate_kwargs):
    return case.model.generate(
        **case.clone_inputs(), custom_generate=capture, max_new_tokens=1, **generate_kwargs
    )


def test_generate_passes_a_given_cache_to_its_decoding_loop_under_the_forward_keyword():
    case = get_case("llava")
    keyword = compat.cache_keyword(case.model)
    cache = DynamicCache()
    prepared = _prepared(case, **{keyword: cache})
    assert compat.find_cache(prepared.model_kwargs) is cache, (
        f"{RELEASE}: the given cache is not in the loop's kwargs"
    )
    assert compat.cache_key(prepared.model_kwargs) == keyword, RELEASE


def test_model_outputs_carry_the_cache_as_a_cache_instance():
    case = get_case("llava")
    with torch.no_grad():
        out = case.model(**case.clone_inputs(), use_cache=True)
    assert isinstance(compat.find_cache(out), Cache), f"{RELEASE}: no Cache among a forward's outputs"


def test_new_cache_is_what_generate_builds_by_default():
    case = get_case("paligemma")
    out = case.model.generate(**case.clone_inputs(), max_new_tokens=2, return_dict_in_generate=True)
    theirs, ours = compat.find_cache(out), compat.new_cache(case.model)
    assert type(ours) is type(theirs), RELEASE
    assert [type(layer) for layer in ours.layers] == [type(layer) for layer in theirs.layers], RELEASE


def test_a_plain_cache_holds_keys_and_values_per_row_head_position():
    case = get_case("llava")
    inputs = case.clone_inputs()
    with torch.no_grad():
        out = case.model(**inputs, use_cache=True)
    cache = compat.find_cache(out)
    assert compat.plain_layers(cache), f"{RELEASE}: the default cache's layers are no longer DynamicLayer"
    (keys, values), *_ = compat.layer_tensors(cache)
    rows, length = inputs["input_ids"].shape
    assert keys.shape[0] == rows and keys.shape[2] == length and keys.shape == values.shape, RELEASE
    halved = [(k[:1], v[:1]) for k, v in compat.layer_tensors(cache)]
    compat.set_layer_tensors(cache, halved)
    assert cache.get_seq_length() == length and compat.layer_tensors(cache)[0][0].shape[0] == 1, RELEASE
    rebuilt = compat.cache_from_tensors(halved)
    assert torch.equal(compat.layer_tensors(rebuilt)[-1][1], halved[-1][1]), RELEASE


def test_beam_search_reorders_its_cache_through_reorder_cache():
    case = get_case("llava")
    calls = []

    class Recording(DynamicCache):
        def reorder_cache(self, beam_idx):
            calls.append(beam_idx.clone())
            return super().reorder_cache(beam_idx)

    cache = Recording(config=case.model.config.get_text_config(decoder=True))
    case.model.generate(
        **case.clone_inputs(),
        max_new_tokens=3,
        num_beams=2,
        do_sample=False,
        **{compat.cache_keyword(case.model): cache},
    )
    assert len(calls) >= 2 and calls[0].shape == (4,), (
        f"{RELEASE}: beam search no longer calls Cache.reorder_cache"
    )


def test_generate_repeats_rows_for_beams_before_its_decoding_loop():
    """``branch.prepare`` asks generate to repeat each row (as for beams) instead of doing it itself."""
    case = get_case("qwen2_vl")
    config = GenerationConfig(**case.model.generation_config.to_dict())
    config.num_beams = config.num_return_sequences = 3
    prepared = _prepared(case, generation_config=config)
    rows = case.inputs["input_ids"].shape[0]
    assert prepared.input_ids.shape[0] == 3 * rows, RELEASE
    assert prepared.model_kwargs["attention_mask"].shape[0] == 3 * rows, RELEASE
    assert torch.equal(prepared.input_ids[::3], case.inputs["input_ids"]), RELEASE


def test_prepare_inputs_for_generation_takes_the_step_keywords():
    case = get_case("llava")
    parameters = inspect.signature(case.model.prepare_inputs_for_generation).parameters
    prepared = _prepared(case)
    first = compat.step_inputs(case.model, prepared.input_ids, dict(prepared.model_kwargs), first=True)
    assert first["input_ids"].shape == prepared.input_ids.shape, RELEASE
    kwargs = dict(prepared.model_kwargs)
    kwargs[compat.cache_key(kwargs)].update(  # as if the prompt had been run: one step slices one token
        *[torch.zeros(2, 2, prepared.input_ids.shape[1], 8)] * 2, 0
    )
    step = compat.step_inputs(case.model, prepared.input_ids, kwargs)
    assert step["input_ids"].shape == (2, 1), f"{RELEASE}: {list(parameters)}"


def test_update_model_kwargs_extends_masks_positions_and_token_types():
    for name in ("paligemma", "qwen2_vl"):
        case = get_case(name)
        kwargs = dict(_prepared(case).model_kwargs)
        before = {k: v.shape[-1] for k, v in kwargs.items() if isinstance(v, torch.Tensor) and v.ndim >= 2}
        cache = compat.find_cache(kwargs)
        after = compat.advance(case.model, kwargs)
        assert compat.find_cache(after) is cache, f"{RELEASE}: advancing without outputs replaced the cache"
        for key in ("attention_mask", "token_type_ids", "mm_token_type_ids", "position_ids"):
            if key in before and key != "pixel_values":
                assert after[key].shape[-1] == before[key] + 1, f"{RELEASE}: {name}'s {key} did not grow"


def test_generate_builds_logits_processors_from_a_config():
    from transformers import RepetitionPenaltyLogitsProcessor

    case = get_case("llava")
    config = GenerationConfig(repetition_penalty=1.3, max_length=20)
    processors = compat.logits_processors(
        case.model,
        generation_config=config,
        input_ids_seq_length=4,
        encoder_input_ids=case.inputs["input_ids"],
        prefix_allowed_tokens_fn=None,
        logits_processor=[],
        device="cpu",
        model_kwargs={},
        negative_prompt_ids=None,
        negative_prompt_attention_mask=None,
    )
    assert any(isinstance(p, RepetitionPenaltyLogitsProcessor) for p in processors), RELEASE


def test_generate_resolves_the_pad_token_and_a_default_length():
    case = get_case("llava")
    prepared = _prepared(case)
    pad = compat.pad_token(prepared.generation_config)
    assert isinstance(pad, torch.Tensor) and int(pad) == case.model.generation_config.pad_token_id, RELEASE
    assert compat.default_max_length(GenerationConfig()) > 0, RELEASE


def test_generate_outputs_have_a_cache_field():
    cache = DynamicCache()
    out = compat.decoder_output(cache, sequences=torch.zeros(1, 2, dtype=torch.long))
    assert compat.find_cache(out) is cache, RELEASE


def test_qwen_keeps_its_rope_offsets_on_the_model():
    """The per-call state ``preserved_state`` restores: another input's prefill must not leak into a step."""
    case = get_case("qwen2_vl")
    case.model.generate(**case.clone_inputs(), max_new_tokens=1)
    holder = case.model.model
    assert isinstance(getattr(holder, "rope_deltas", None), torch.Tensor), (
        f"{RELEASE}: Qwen's rope_deltas moved"
    )
    saved = holder.rope_deltas
    with compat.preserved_state(case.model):
        holder.rope_deltas = None
    assert holder.rope_deltas is saved


@pytest.mark.parametrize("name", ["llava", "qwen2_vl", "paligemma"])
def test_attention_implementation_is_a_config_field_and_eager_returns_weights(name):
    """OPERA's last-layer switch: the field ``set_attn_implementation`` sets, the family's eager function."""
    from halluguard.decoders.readout import TextStack

    case = get_case(name)
    text = case.model.config.get_text_config()
    assert compat.attn_implementation(text) == "sdpa", f"{RELEASE}: _attn_implementation moved"
    attention = TextStack.of(case.model).blocks[-1].self_attn
    eager = compat.eager_attention(attention)
    heads = text.num_attention_heads
    width = getattr(text, "head_dim", None) or text.hidden_size // heads
    query = torch.randn(1, heads, 3, width)
    key = torch.randn(1, text.num_key_value_heads, 3, width)
    output, weights = eager(attention, query, key, key, None, scaling=1.0, dropout=0.0)
    assert weights.shape == (1, heads, 3, 3), f"{RELEASE}: eager_attention_forward returns no weights"
    assert torch.allclose(weights.sum(-1), torch.ones(1, heads, 3)), RELEASE


def test_errors_name_the_release():
    error = compat.broken("something moved")
    assert isinstance(error, compat.CompatibilityError) and compat.VERSION in str(error)
    with pytest.raises(compat.CompatibilityError):
        compat.cache_keyword(torch.nn.Linear(1, 1))
