"""Tiny random models of the seven supported families, built offline from their config classes.

Each ``Case`` holds a model and a left-padded batch of two prompts with one image each, laid out
as the family's processor lays them out (image placeholders, wrapper tokens, token types), plus
the tokenizer stub ICD needs. Models are built once per test run: they are tiny (hidden 32, two
layers, 8x8 images).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

VOCAB = 128
PAD, BOS, EOS = 0, 1, 2
IMAGE = 100  # the image placeholder of every family (Qwen uses 101/102 as vision start/end)
VISION_START, VISION_END = 101, 102
FAKE_AROUND, GLOBAL_IMG = 103, 104  # Idefics3's wrappers
#: Every token of an image block: placeholders and wrappers (what the families' ``image_block`` marks)
IMAGE_TOKENS = (IMAGE, VISION_START, VISION_END, FAKE_AROUND, GLOBAL_IMG)


class StubTokenizer:
    """Word-level stand-in for a tokenizer: each word maps to a fixed id in [20, 90)."""

    pad_token_id = PAD

    def __call__(self, text, add_special_tokens=False):
        ids = [20 + sum(map(ord, word)) % 70 for word in text.split()]
        return {"input_ids": ids}


class StubProcessor:
    """Stand-in for InstructBLIP's processor: a language-model tokenizer and a Q-Former tokenizer."""

    def __init__(self):
        self.tokenizer = StubTokenizer()
        self.qformer_tokenizer = StubTokenizer()


@dataclass
class Case:
    name: str
    model: torch.nn.Module
    inputs: dict
    tokenizer: object = field(default_factory=StubTokenizer)

    def clone_inputs(self) -> dict:
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in self.inputs.items()}


def _text(**extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        **extra,
    )


#: Placeholder and wrapper ids a tiny random model must not generate (a generated placeholder would
#: be taken for an image by the from-scratch reference, which re-reads the whole sequence).
SUPPRESSED = [IMAGE, VISION_START, VISION_END, FAKE_AROUND, GLOBAL_IMG, 105]


def _finish(model):
    model.eval()
    # InstructBLIP's generate runs its language model's generate, with that model's config
    configs = [model.generation_config]
    if hasattr(model, "language_model") and hasattr(model.language_model, "generation_config"):
        configs.append(model.language_model.generation_config)
    for config in configs:
        config.suppress_tokens = SUPPRESSED
        config.pad_token_id, config.eos_token_id, config.bos_token_id = PAD, EOS, BOS
    return model


def _rows(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token rows; return ids and attention mask."""
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(prompts):
        ids[r, width - len(row) :] = torch.tensor(row)
        mask[r, width - len(row) :] = 1
    return ids, mask


def _amplify_images(model, *modules: str):
    """Make the projected image features large, so that the image visibly changes the logits."""
    with torch.no_grad():
        for path in modules:
            module = model
            for part in path.split("."):
                module = getattr(module, part)
            for param in module.parameters():
                param.mul_(4.0)


def build_llava() -> Case:
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=8,
            patch_size=4,
            projection_dim=16,
        ),
        text_config=_text(),
        image_token_index=IMAGE,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    model = _finish(LlavaForConditionalGeneration(config))
    _amplify_images(model, "model.multi_modal_projector")
    n = 4  # (8 / 4) ** 2 patches, CLS dropped
    ids, mask = _rows(
        [[BOS, 5, IMAGE] + [IMAGE] * (n - 1) + [7, 8], [BOS, 5, 6, 9] + [IMAGE] * n + [7, 8, 9]]
    )
    return Case(
        "llava", model, {"input_ids": ids, "attention_mask": mask, "pixel_values": torch.randn(2, 3, 8, 8)}
    )


def build_llava_next() -> Case:
    from transformers import CLIPVisionConfig, LlavaNextConfig, LlavaNextForConditionalGeneration

    torch.manual_seed(1)
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=8,
            patch_size=4,
            projection_dim=16,
        ),
        text_config=_text(),
        image_token_index=IMAGE,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        image_grid_pinpoints=[[8, 8], [8, 16]],
    )
    model = _finish(LlavaNextForConditionalGeneration(config))
    _amplify_images(model, "model.multi_modal_projector")
    # an 8x8 image: base tile + one 8x8 tile; 4 + 4 features, plus one newline per row of the tile grid
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches  # noqa: F401

    sizes = torch.tensor([[8, 8], [8, 8]])
    pixel_values = torch.randn(2, 2, 3, 8, 8)
    with torch.no_grad():
        n = sum(
            len(f)
            for f in model.model.get_image_features(pixel_values[:1], image_sizes=sizes[:1]).pooler_output
        )
    ids, mask = _rows([[BOS, 5] + [IMAGE] * n + [7, 8], [BOS, 5, 6, 9] + [IMAGE] * n + [7, 8, 9]])
    return Case(
        "llava_next",
        model,
        {"input_ids": ids, "attention_mask": mask, "pixel_values": pixel_values, "image_sizes": sizes},
    )


def _qwen(config_cls, model_cls, vision_kwargs, seed) -> Case:
    torch.manual_seed(seed)
    config = config_cls(
        text_config=dict(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
            pad_token_id=PAD,
            bos_token_id=BOS,
            eos_token_id=EOS,
        ),
        vision_config=dict(
            depth=1,
            num_heads=2,
            in_channels=3,
            patch_size=2,
            spatial_merge_size=2,
            temporal_patch_size=2,
            **vision_kwargs,
        ),
        image_token_id=IMAGE,
        video_token_id=105,
        vision_start_token_id=VISION_START,
        vision_end_token_id=VISION_END,
    )
    model = _finish(model_cls(config))
    grid = torch.tensor([[1, 4, 4], [1, 4, 4]])  # 16 patches of 2x2 -> 4 tokens after the 2x2 merge
    pixel_values = torch.randn(32, 3 * 2 * 2 * 2)
    block = [VISION_START] + [IMAGE] * 4 + [VISION_END]
    ids, mask = _rows([[BOS, 5] + block + [7, 8], [BOS, 5, 6, 9] + block + [7, 8, 9]])
    mm = (ids == IMAGE).long()
    return Case(
        model_cls.__name__,
        model,
        {
            "input_ids": ids,
            "attention_mask": mask,
            "pixel_values": pixel_values,
            "image_grid_thw": grid,
            "mm_token_type_ids": mm,
        },
    )


def build_qwen2_vl() -> Case:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    case = _qwen(
        Qwen2VLConfig, Qwen2VLForConditionalGeneration, dict(embed_dim=16, hidden_size=32, mlp_ratio=2), 2
    )
    case.name = "qwen2_vl"
    return case


def build_qwen2_5_vl() -> Case:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    vision = dict(
        hidden_size=16, out_hidden_size=32, intermediate_size=32, window_size=8, fullatt_block_indexes=[0]
    )
    case = _qwen(Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, vision, 3)
    case.name = "qwen2_5_vl"
    return case


def build_idefics3() -> Case:
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    torch.manual_seed(4)
    config = Idefics3Config(
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=8,
            patch_size=2,
        ),
        text_config=_text(),
        image_token_id=IMAGE,
        scale_factor=2,
    )
    model = _finish(Idefics3ForConditionalGeneration(config))
    _amplify_images(model, "model.connector")
    n = (8 // 2) ** 2 // 2**2  # 16 patches, pixel-shuffled by 2 -> 4 tokens
    block = [FAKE_AROUND, GLOBAL_IMG] + [IMAGE] * n + [FAKE_AROUND]
    ids, mask = _rows([[BOS, 5] + block + [7, 8], [BOS, 5, 6, 9] + block + [7, 8, 9]])
    pixel_values = torch.randn(2, 1, 3, 8, 8)
    return Case(
        "idefics3",
        model,
        {
            "input_ids": ids,
            "attention_mask": mask,
            "pixel_values": pixel_values,
            "pixel_attention_mask": torch.ones(2, 1, 8, 8, dtype=torch.bool),
        },
    )


def build_paligemma() -> Case:
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        SiglipVisionConfig,
    )

    torch.manual_seed(5)
    text = GemmaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=256,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        initializer_range=0.2,
    )
    config = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=8,
            patch_size=4,
            projection_dim=32,
        ),
        text_config=text,
        image_token_index=IMAGE,
        projection_dim=32,
    )
    model = _finish(PaliGemmaForConditionalGeneration(config))
    _amplify_images(model, "model.multi_modal_projector")
    n = 4
    ids, mask = _rows([[IMAGE] * n + [BOS, 5, 7, 8, 10], [IMAGE] * n + [BOS, 5, 6, 9, 7, 8, 10]])
    return Case(
        "paligemma",
        model,
        {
            "input_ids": ids,
            "attention_mask": mask,
            "pixel_values": torch.randn(2, 3, 8, 8),
            "token_type_ids": torch.zeros_like(ids),
        },
    )


def build_instructblip() -> Case:
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration

    torch.manual_seed(6)
    config = InstructBlipConfig(
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=8,
            patch_size=4,
        ),
        qformer_config=dict(
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            encoder_hidden_size=16,
            max_position_embeddings=64,
        ),
        text_config=_text().to_dict(),
        num_query_tokens=4,
        image_token_index=IMAGE,
    )
    model = _finish(InstructBlipForConditionalGeneration(config))
    _amplify_images(model, "language_projection")
    queries = [IMAGE] * 4
    ids, mask = _rows([[BOS, 5, 7, 8], [BOS, 5, 6, 9, 7, 8, 9]])
    # InstructBLIP's processor puts the query placeholders before the (padded) text
    ids = torch.cat([torch.full((2, 4), IMAGE), ids], dim=1)
    mask = torch.cat([torch.ones(2, 4, dtype=torch.long), mask], dim=1)
    q_ids, q_mask = _rows([[BOS, 5, 7, 8], [BOS, 5, 6, 9, 7, 8, 9]])
    del queries
    return Case(
        "instructblip",
        model,
        {
            "input_ids": ids,
            "attention_mask": mask,
            "pixel_values": torch.randn(2, 3, 8, 8),
            "qformer_input_ids": q_ids,
            "qformer_attention_mask": q_mask,
        },
        tokenizer=StubProcessor(),
    )


BUILDERS = {
    "llava": build_llava,
    "llava_next": build_llava_next,
    "qwen2_vl": build_qwen2_vl,
    "qwen2_5_vl": build_qwen2_5_vl,
    "idefics3": build_idefics3,
    "paligemma": build_paligemma,
    "instructblip": build_instructblip,
}
_CACHE: dict[str, Case] = {}


def get_case(name: str) -> Case:
    if name not in _CACHE:
        state = torch.random.get_rng_state()
        try:
            _CACHE[name] = BUILDERS[name]()
        finally:
            torch.random.set_rng_state(state)
    return _CACHE[name]
