"""Per-family adapters: where the image sits in the prompt, which tensors carry it, how to distort it.

Everything the methods need to know about a model family lives here, so that the contrast
machinery (``branch.py``) and the methods (``vcd.py`` ...) stay family-agnostic.

- ``image_block(model, input_ids)``: the token columns that make up the image(s) in each row.
- ``instruction_position(...)``: where ICD puts its disturbing instruction (right after the image).
- ``noise(...)``: VCD's diffusion noise on the family's pixel tensors.
- ``drop_image(...)``: the same prompt without the image (VDD, M3ID).
- ``to_target(...)``: the module whose ``generate`` runs the loop, with its inputs. For every family
  but InstructBLIP that is the model itself; InstructBLIP's ``generate`` feeds Q-Former features
  into its language model, so its target is the language model with ``inputs_embeds``.

>>> sorted(FAMILIES)
['idefics3', 'instructblip', 'llava', 'llava_next', 'paligemma', 'qwen2_5_vl', 'qwen2_vl']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .distortions import diffusion_noise, insert_columns, keep_columns

#: Inputs that never take part in a guarded call, with the reason.
UNSUPPORTED_INPUTS = {
    "pixel_values_videos": "video inputs are not supported by the contrast branches",
    "video_grid_thw": "video inputs are not supported by the contrast branches",
    "inputs_embeds": "pass input_ids (and the image tensors) so that the contrast branch can be built",
}


class UnsupportedModelError(TypeError):
    """The model is not one of the supported families."""


class Family:
    """A model family: its name, the classes it covers and the tensors that carry its images."""

    name = ""
    title = ""
    architectures: tuple[str, ...] = ()
    image_keys: tuple[str, ...] = ("pixel_values",)
    #: Model inputs besides ``input_ids``/``attention_mask`` and the image keys.
    extra_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<family {self.name}: {self.title}>"

    # -- inputs -------------------------------------------------------------------------------
    @property
    def input_keys(self) -> tuple[str, ...]:
        return ("input_ids", "attention_mask", *self.image_keys, *self.extra_keys)

    def image_token_ids(self, model) -> list[int]:
        token = getattr(model.config, "image_token_id", None)
        if token is None:
            raise ValueError(
                f"{type(model).__name__}.config has no image_token_id; cannot find the image in the prompt"
            )
        return [int(token)]

    def image_block(self, model, input_ids: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the token columns that belong to the image(s)."""
        ids = torch.tensor(self.image_token_ids(model), device=input_ids.device)
        return torch.isin(input_ids, ids)

    def pad_token_id(self, model) -> int:
        """A token id for padding columns (masked out, but never an image placeholder)."""
        config = model.generation_config
        images = set(self.image_token_ids(model))
        for value in (config.pad_token_id, config.eos_token_id, getattr(config, "bos_token_id", None), 0):
            candidate = value[0] if isinstance(value, (list, tuple)) and value else value
            if isinstance(candidate, torch.Tensor):
                candidate = int(candidate.flatten()[0])
            if isinstance(candidate, int) and candidate not in images:
                return candidate
        return 1

    def bos_token_id(self, model) -> int | None:
        text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        return getattr(text, "bos_token_id", None)

    # -- distortions --------------------------------------------------------------------------
    def noise(self, inputs: Mapping, step: int, generator_for) -> dict:
        """``inputs`` with VCD's diffusion noise on its pixels; ``generator_for(device)`` gives the RNG."""
        out = dict(inputs)
        pixels = inputs.get("pixel_values")
        if pixels is None:
            raise ValueError("VCD needs the image: pass pixel_values to generate")
        out["pixel_values"] = diffusion_noise(pixels, step, generator_for(pixels.device))
        return out

    def drop_image(self, model, inputs: Mapping) -> dict:
        """The same prompt without the image: the image block's tokens and the image tensors removed."""
        keep = ~self.image_block(model, inputs["input_ids"])
        out = keep_columns(inputs, keep, self.pad_token_id(model))
        for key in self.image_keys:
            out.pop(key, None)
        return out

    def instruction_position(self, model, ids: torch.Tensor, mask: torch.Tensor) -> int:
        """Column where ICD's instruction goes in a row: right after the image (and a BOS after it)."""
        block = self.image_block(model, ids[None])[0] & mask.bool()
        position = int(block.nonzero().flatten()[-1]) + 1 if block.any() else 0
        while position < ids.shape[0] and not mask[position]:  # padding (InstructBLIP pads after its queries)
            position += 1
        bos = self.bos_token_id(model)
        if position < ids.shape[0] and bos is not None and int(ids[position]) == bos:
            position += 1
        return position

    def add_instruction(self, model, inputs: Mapping, text: str, processor) -> dict:
        """``inputs`` with ``text`` (tokenized by ``processor``'s tokenizer) after the image in every row."""
        tokenizer = getattr(processor, "tokenizer", processor)
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask
        positions = [self.instruction_position(model, ids[r], mask[r]) for r in range(ids.shape[0])]
        return insert_columns(inputs, positions, tokens, self.pad_token_id(model))

    # -- execution ----------------------------------------------------------------------------
    def to_target(self, model, inputs: Mapping) -> tuple[Any, dict]:
        """The module whose ``generate`` runs the decoding loop, and the inputs to give it."""
        return model, dict(inputs)


class Llava(Family):
    name, title = "llava", "LLaVA-1.5"
    architectures = ("LlavaForConditionalGeneration",)
    image_keys = ("pixel_values", "image_sizes")


class LlavaNext(Family):
    name, title = "llava_next", "LLaVA-NeXT"
    architectures = ("LlavaNextForConditionalGeneration",)
    image_keys = ("pixel_values", "image_sizes")


class PaliGemma(Family):
    name, title = "paligemma", "PaliGemma"
    architectures = ("PaliGemmaForConditionalGeneration",)
    extra_keys = ("token_type_ids",)


class Qwen2VL(Family):
    name, title = "qwen2_vl", "Qwen2-VL"
    architectures = ("Qwen2VLForConditionalGeneration",)
    image_keys = ("pixel_values", "image_grid_thw")
    extra_keys = ("mm_token_type_ids",)

    def image_token_ids(self, model) -> list[int]:
        config = model.config
        return [
            int(config.image_token_id),
            int(config.vision_start_token_id),
            int(config.vision_end_token_id),
        ]


class Qwen25VL(Qwen2VL):
    name, title = "qwen2_5_vl", "Qwen2.5-VL"
    architectures = ("Qwen2_5_VLForConditionalGeneration",)


class Idefics3(Family):
    """SmolVLM/Idefics3: ``<fake_token_around_image><global-img><image>*N<fake_token_around_image>``.

    The wrapper tokens have no id in the config; they are found around the image runs: the marker
    right before each run (``<global-img>``, ``<row_i_col_j>``) and the token right after it.
    Padding images in ``pixel_values`` are all zeros and stay zeros under VCD's noise.
    """

    name, title = "idefics3", "Idefics3 (SmolVLM)"
    architectures = ("Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration")
    image_keys = ("pixel_values", "pixel_attention_mask")

    def image_block(self, model, input_ids: torch.Tensor) -> torch.Tensor:
        image = super().image_block(model, input_ids)
        marker = torch.zeros_like(image)
        marker[:, :-1] = image[:, 1:] & ~image[:, :-1]
        after = torch.zeros_like(image)
        after[:, 1:] = image[:, :-1] & ~image[:, 1:]
        wrappers = input_ids[after].unique()
        return image | marker | torch.isin(input_ids, wrappers)

    def noise(self, inputs: Mapping, step: int, generator_for) -> dict:
        out = super().noise(inputs, step, generator_for)
        pixels = inputs["pixel_values"]
        padding = (pixels == 0).flatten(start_dim=-3).all(dim=-1)  # (batch, images)
        out["pixel_values"] = torch.where(padding[..., None, None, None], pixels, out["pixel_values"])
        return out


class InstructBlip(Family):
    """InstructBLIP: its own ``generate`` feeds Q-Former features to the language model.

    The guarded loop runs on ``model.language_model`` with the same ``inputs_embeds`` InstructBLIP's
    ``generate`` builds; the no-image branch is the language model on the text tokens alone.
    """

    name, title = "instructblip", "InstructBLIP"
    architectures = ("InstructBlipForConditionalGeneration",)
    image_keys = ("pixel_values",)
    extra_keys = ("qformer_input_ids", "qformer_attention_mask", "interpolate_pos_encoding")

    def drop_image(self, model, inputs: Mapping) -> dict:
        out = super().drop_image(model, inputs)
        for key in ("qformer_input_ids", "qformer_attention_mask", "interpolate_pos_encoding"):
            out.pop(key, None)
        return out

    def add_instruction(self, model, inputs: Mapping, text: str, processor) -> dict:
        """Also prefixes the Q-Former's copy of the instruction when ``processor`` has its tokenizer."""
        out = super().add_instruction(model, inputs, text, processor)
        qformer_tokenizer = getattr(processor, "qformer_tokenizer", None)
        qformer_ids = inputs.get("qformer_input_ids")
        if qformer_tokenizer is not None and qformer_ids is not None:
            q_tokens = qformer_tokenizer(text, add_special_tokens=False)["input_ids"]
            q_mask = inputs.get("qformer_attention_mask")
            q_mask = torch.ones_like(qformer_ids) if q_mask is None else q_mask
            # after the [CLS] token that starts each (left- or right-padded) row
            positions = [int(q_mask[r].nonzero().flatten()[0]) + 1 for r in range(qformer_ids.shape[0])]
            edited = insert_columns(
                {"input_ids": qformer_ids, "attention_mask": q_mask},
                positions,
                q_tokens,
                qformer_tokenizer.pad_token_id or 0,
            )
            out["qformer_input_ids"], out["qformer_attention_mask"] = (
                edited["input_ids"],
                edited["attention_mask"],
            )
        return out

    def to_target(self, model, inputs: Mapping) -> tuple[Any, dict]:
        if not model.config.use_decoder_only_language_model:
            raise UnsupportedModelError(
                "InstructBLIP with an encoder-decoder language model (Flan-T5) is not supported; "
                "use a decoder-only one (Vicuna)"
            )
        inputs = dict(inputs)
        pixel_values = inputs.pop("pixel_values", None)
        qformer_ids = inputs.pop("qformer_input_ids", None)
        qformer_mask = inputs.pop("qformer_attention_mask", None)
        interpolate = bool(inputs.pop("interpolate_pos_encoding", False))
        input_ids = inputs["input_ids"]
        embeds = model.get_input_embeddings()(input_ids)
        if pixel_values is not None:
            features = model.get_image_features(
                pixel_values,
                qformer_input_ids=qformer_ids,
                qformer_attention_mask=qformer_mask,
                interpolate_pos_encoding=interpolate,
                return_dict=True,
            ).pooler_output
            mask = model.get_placeholder_mask(input_ids, inputs_embeds=embeds)
            embeds = embeds.masked_scatter(mask, features.to(embeds.device, embeds.dtype))
        inputs["inputs_embeds"] = embeds
        if inputs.get("attention_mask") is None:
            inputs["attention_mask"] = torch.ones_like(input_ids)
        return model.language_model, inputs


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (Llava(), LlavaNext(), Qwen2VL(), Qwen25VL(), Idefics3(), PaliGemma(), InstructBlip())
}


def supported_families() -> str:
    """One line naming the supported families, for error messages."""
    return ", ".join(f"{family.title} ({family.architectures[0]})" for family in FAMILIES.values())


def family_of(model) -> Family:
    """The family of ``model`` (a ``*ForConditionalGeneration`` instance), or a clear error.

    >>> family_of(object())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    halluguard.decoders.families.UnsupportedModelError: object is not supported; supported families: ...
    """
    for cls in type(model).__mro__:
        for family in FAMILIES.values():
            if cls.__name__ in family.architectures:
                return family
    raise UnsupportedModelError(
        f"{type(model).__name__} is not supported; supported families: {supported_families()}"
    )
