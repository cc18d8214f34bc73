"""The lab's captioner as a real Hugging Face checkpoint: LLaVA, a word-level tokenizer, a LlavaProcessor.

Everything is built from configs, so the checkpoint loads exactly like a hub model::

    processor = AutoProcessor.from_pretrained(path)
    model = LlavaForConditionalGeneration.from_pretrained(path)

- Vision: a CLIP vision tower at 64 px with 8 px patches (64 image tokens + CLS), hidden 128 x 4 layers.
- Language: a Llama decoder, hidden 128 x 4 layers, over a word-level vocabulary of ~50 words.
- Tokenizer: a ``PreTrainedTokenizerFast`` (``tokenizers`` WordLevel, lower-cased, split on whitespace and
  punctuation) with ``<image>``, ``<s>``, ``</s>``, ``<pad>`` and ``<unk>``; words outside the vocabulary
  become ``<unk>``.
- Prompt: :data:`PROMPT` (``"<image>describe the image."``); the processor's chat template renders a user
  turn with an image and any text into the same shape.

>>> tokenizer = build_tokenizer()
>>> tokenizer.decode(tokenizer("there are two red circles and a small blue star.")["input_ids"],
...                  skip_special_tokens=True)
'there are two red circles and a small blue star.'
>>> model = build_model(seed=0)
>>> 1.5e6 < sum(p.numel() for p in model.parameters()) < 2.0e6
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from halluguard.lab import world

IMAGE_TOKEN = "<image>"
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>", IMAGE_TOKEN)
INSTRUCTION = "describe the image."
PROMPT = IMAGE_TOKEN + INSTRUCTION
PATCH = 8
IMAGE_TOKENS = (world.SIZE // PATCH) ** 2
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}{% endfor %}"
)


def words() -> list[str]:
    """The vocabulary's words: templates, numbers, colours, kinds (singular and plural), the instruction."""
    base = ["there", "is", "are", "a", "an", "and", ",", ".", "small", "describe", "the", "image"]
    out = base + list(world.NUMBERS[1:]) + list(world.COLOURS)
    for kind in world.KINDS:
        out += [kind, world.PLURALS[kind]]
    return list(dict.fromkeys(out))


def build_tokenizer():
    """A ``PreTrainedTokenizerFast`` over :func:`words` that prepends ``<s>`` and decodes with clean spacing."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(list(SPECIALS) + words())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])])
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN}, padding_side="left",
        clean_up_tokenization_spaces=True, model_max_length=256,
    )
    return tokenizer


def build_image_processor():
    """CLIP preprocessing at 64 px (no resize of lab images; CLIP's mean and std)."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": world.SIZE}, crop_size={"height": world.SIZE, "width": world.SIZE})


def build_processor(tokenizer=None, image_processor=None):
    """The ``LlavaProcessor`` that expands ``<image>`` into the 64 image tokens."""
    from transformers import LlavaProcessor

    return LlavaProcessor(
        image_processor=image_processor or build_image_processor(), tokenizer=tokenizer or build_tokenizer(),
        patch_size=PATCH, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def build_config(tokenizer=None, hidden: int = 128, layers: int = 4, heads: int = 4, intermediate: int = 384):
    """The ``LlavaConfig``: CLIP vision (64 px / 8 px patches) + Llama, both ``hidden`` x ``layers``."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    tokenizer = tokenizer or build_tokenizer()
    vision = CLIPVisionConfig(
        hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers, num_attention_heads=heads,
        image_size=world.SIZE, patch_size=PATCH, projection_dim=hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=IMAGE_TOKENS, vision_feature_layer=-1, vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    config.pad_token_id = tokenizer.pad_token_id
    return config


def build_model(seed: int = 0, config=None):
    """A randomly initialised ``LlavaForConditionalGeneration`` (seeded, without touching the global RNG).

    Generation defaults: greedy, at most 32 new tokens, stop at ``</s>``.
    """
    import torch
    from transformers import LlavaForConditionalGeneration

    config = config or build_config()
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(state)
    set_generation_defaults(model)
    return model


def set_generation_defaults(model) -> None:
    """Greedy, 32 new tokens, ``</s>`` ends, ``<pad>`` pads."""
    text = model.config.text_config
    gc = model.generation_config
    gc.do_sample = False
    gc.max_new_tokens = 32
    gc.eos_token_id = text.eos_token_id
    gc.pad_token_id = text.pad_token_id
    gc.bos_token_id = text.bos_token_id


def save(model, processor, path: str | Path, dtype: str = "float16") -> Path:
    """``save_pretrained`` of the model (cast to ``dtype``) and the processor into ``path``."""
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def cpu_dtype() -> Any:
    """bfloat16 where the CPU multiplies it natively (AVX512-BF16 or AMX), float32 elsewhere.

    On such CPUs bfloat16 makes the lab's captioning 1.5-2x faster; about 98 % of greedy captions are
    identical to float32's and every rate moves by less than its interval (benchmarks/RESULTS.md).
    Elsewhere bfloat16 is emulated and slower than float32.

    >>> str(cpu_dtype()) in ("torch.bfloat16", "torch.float32")
    True
    """
    import torch

    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except AttributeError:  # an older torch without the probes
        native = False
    return torch.bfloat16 if native else torch.float32


def load(path: str | Path, dtype: Any = None, device: Any = "cpu"):
    """``(model, processor)`` through the public loading path (``from_pretrained``), in eval mode.

    ``dtype`` defaults to :func:`cpu_dtype` on CPU (the saved float16 is slow there) and to the saved
    dtype elsewhere.
    """
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    if dtype is None:
        dtype = cpu_dtype() if str(device) == "cpu" else "auto"
    model = LlavaForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device).eval()
    processor = AutoProcessor.from_pretrained(path)
    return model, processor
