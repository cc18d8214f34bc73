"""The per-family distortions: what the second branch's inputs look like."""

from __future__ import annotations

import pytest
import torch
from tiny_models import (
    BOS,
    FAKE_AROUND,
    GLOBAL_IMG,
    IMAGE,
    PAD,
    VISION_END,
    VISION_START,
    StubTokenizer,
    get_case,
)

from halluguard.decoders import ICDLogitsProcessor, UnsupportedModelError, VCDLogitsProcessor, family_of
from halluguard.decoders.distortions import diffusion_noise
from halluguard.decoders.families import FAMILIES

WRAPPERS = {IMAGE, VISION_START, VISION_END, FAKE_AROUND, GLOBAL_IMG}


def _text_rows(inputs):
    """The attended tokens of each row."""
    return [row[mask.bool()].tolist() for row, mask in zip(inputs["input_ids"], inputs["attention_mask"])]


def test_every_family_is_detected(case):
    family = family_of(case.model)
    assert type(case.model).__name__ in family.architectures
    assert set(family.image_keys) & set(case.inputs)


def test_unsupported_models_are_named():
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=16, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2
        )
    )
    with pytest.raises(
        UnsupportedModelError, match="LlamaForCausalLM is not supported.*Qwen2.5-VL.*InstructBLIP"
    ):
        family_of(model)
    assert len(FAMILIES) == 7


def test_drop_image_keeps_the_text_and_nothing_of_the_image(case):
    family = family_of(case.model)
    out = family.drop_image(case.model, case.clone_inputs())
    assert not set(family.image_keys) & set(out)
    for before, after in zip(_text_rows(case.inputs), _text_rows(out)):
        assert after == [t for t in before if t not in WRAPPERS]
    assert out["input_ids"].shape[1] == max(map(len, _text_rows(out)))  # re-padded on the left
    for key in ("token_type_ids", "mm_token_type_ids"):
        if key in case.inputs:
            assert out[key].shape == out["input_ids"].shape


def test_icd_puts_the_instruction_right_after_the_image(case):
    family = family_of(case.model)
    instruction = "You are a confused object detector."
    words = StubTokenizer()(instruction)["input_ids"]
    out = family.add_instruction(case.model, case.clone_inputs(), instruction, case.tokenizer)
    for before, after in zip(_text_rows(case.inputs), _text_rows(out)):
        last_image = max(i for i, t in enumerate(before) if t in WRAPPERS)
        at = last_image + 1 + (before[last_image + 1] == BOS)
        assert after == before[:at] + words + before[at:]
    if case.name == "instructblip":  # the Q-Former reads the instruction too, after its first token
        for before, after in zip(
            _text_rows(
                {
                    "input_ids": case.inputs["qformer_input_ids"],
                    "attention_mask": case.inputs["qformer_attention_mask"],
                }
            ),
            _text_rows(
                {"input_ids": out["qformer_input_ids"], "attention_mask": out["qformer_attention_mask"]}
            ),
        ):
            assert after == before[:1] + words + before[1:]


def test_vcd_noises_only_the_pixels(case):
    processor = VCDLogitsProcessor(branch=object(), noise_step=500, seed=9)
    out = processor.distort(family_of(case.model), case.model, case.clone_inputs())
    pixels = case.inputs["pixel_values"]
    expected = diffusion_noise(pixels, 500, torch.Generator().manual_seed(9))
    torch.testing.assert_close(out["pixel_values"], expected)
    for key, value in case.inputs.items():
        if key != "pixel_values":
            assert torch.equal(out[key], value)


def test_idefics3_padding_images_stay_empty():
    case = get_case("idefics3")
    inputs = case.clone_inputs()
    inputs["pixel_values"] = torch.cat(
        [inputs["pixel_values"], torch.zeros_like(inputs["pixel_values"])], dim=1
    )
    out = VCDLogitsProcessor(branch=object(), seed=0).distort(family_of(case.model), case.model, inputs)
    assert torch.equal(out["pixel_values"][:, 1], torch.zeros_like(out["pixel_values"][:, 1]))
    assert not torch.equal(out["pixel_values"][:, 0], inputs["pixel_values"][:, 0])


def test_icd_needs_a_tokenizer():
    case = get_case("llava")
    with pytest.raises(TypeError, match="tokenizer=processor"):
        ICDLogitsProcessor(case.model, case.clone_inputs())


def test_padding_id_is_never_an_image_placeholder(case):
    assert family_of(case.model).pad_token_id(case.model) == PAD
