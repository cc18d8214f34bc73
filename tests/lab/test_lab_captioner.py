"""The captioner as a real checkpoint: tokenizer, processor, config; save and load like a hub model."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from halluguard.lab import captioner, world  # noqa: E402


def test_tokenizer_round_trip_and_unknown_words():
    tok = captioner.build_tokenizer()
    text = "there are two red circles, a blue star and a small orange heart."
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.convert_ids_to_tokens(tok("A Zebra", add_special_tokens=False)["input_ids"]) == ["a", "<unk>"]
    assert tok.convert_tokens_to_ids(captioner.IMAGE_TOKEN) != tok.unk_token_id


def test_every_caption_word_is_in_the_vocabulary():
    tok = captioner.build_tokenizer()
    for scene in world.make_scenes(0, "test", 200, prior_breaking_share=0.5):
        ids = tok(world.caption(scene), add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids


def test_processor_expands_the_image_into_64_tokens():
    processor = captioner.build_processor()
    images = world.to_pil(world.render(world.make_scenes(0, "test", 2))[0])
    batch = processor(images=images, text=[captioner.PROMPT] * 2, return_tensors="pt")
    image_id = processor.tokenizer.convert_tokens_to_ids(captioner.IMAGE_TOKEN)
    assert (batch["input_ids"] == image_id).sum(dim=1).tolist() == [64, 64]
    assert batch["pixel_values"].shape == (2, 3, 64, 64)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": captioner.INSTRUCTION}]}]
    assert processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) == captioner.PROMPT


def test_save_and_load_through_from_pretrained(tmp_path):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = captioner.build_model(seed=0).eval()
    n = sum(p.numel() for p in model.parameters())
    assert 1.5e6 < n < 2.0e6
    captioner.save(model, captioner.build_processor(), tmp_path)
    size = sum(f.stat().st_size for f in tmp_path.iterdir())
    assert size < 4 * 2**20
    loaded = LlavaForConditionalGeneration.from_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert loaded.dtype == torch.float16
    images = world.to_pil(world.render(world.make_scenes(0, "test", 2))[0])
    batch = processor(images=images, text=[captioner.PROMPT] * 2, return_tensors="pt")
    out = loaded.float().generate(**batch, max_new_tokens=3)
    assert out.shape == (2, batch["input_ids"].shape[1] + 3)


def test_build_model_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a = captioner.build_model(seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    b = captioner.build_model(seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
