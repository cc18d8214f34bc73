"""``halluguard generate`` end to end, on a tiny random LLaVA saved with its processor."""

from __future__ import annotations

import json
import math

import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from halluguard.decoders.cli import generate_command

WORDS = [
    "<pad>",
    "<s>",
    "</s>",
    "<unk>",
    "<image>",
    "USER:",
    "ASSISTANT:",
    "is",
    "there",
    "a",
    "dog",
    "cat",
    "in",
    "the",
    "image",
    "?",
    "yes",
    "no",
    "describe",
    ".",
    "red",
    "blue",
    "car",
    "tree",
    "sky",
    "and",
    "on",
    "with",
]
TEMPLATE = (
    "{% for m in messages %}USER: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}{% if add_generation_prompt %}ASSISTANT:"
    "{% endif %}"
)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("generate")(generate_command)
    return app


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    """A random LLaVA with a word-level tokenizer and a real LlavaProcessor, saved like a checkpoint."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    folder = tmp_path_factory.mktemp("tiny-llava")
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    images = CLIPImageProcessor(size={"shortest_edge": 8}, crop_size={"height": 8, "width": 8})
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=4,
        chat_template=TEMPLATE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = LlavaConfig(
            vision_config=CLIPVisionConfig(
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=8,
                patch_size=4,
            ),
            text_config=LlamaConfig(
                vocab_size=len(WORDS),
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                pad_token_id=0,
                bos_token_id=1,
                eos_token_id=2,
            ),
            image_token_index=WORDS.index("<image>"),
        )
        model = LlavaForConditionalGeneration(config)
    model.generation_config.suppress_tokens = [WORDS.index("<image>")]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for i, colour in enumerate([(250, 0, 0), (0, 200, 30), (10, 10, 240)]):
        Image.new("RGB", (12 + 4 * i, 10), colour).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _run(*args):
    return CliRunner().invoke(_app(), ["generate", *map(str, args)])


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prompt_mode_writes_one_answer_per_image(tiny_llava, pictures, tmp_path):
    out = tmp_path / "answers.jsonl"
    result = _run(
        "--model",
        tiny_llava,
        "--images",
        pictures,
        "--prompt",
        "describe the image",
        "--method",
        "vcd",
        "--max-new-tokens",
        4,
        "--batch-size",
        2,
        "--seed",
        3,
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    records = _lines(out)
    assert [r["image"] for r in records] == ["img0.png", "img1.png", "img2.png"]
    for record in records:
        assert record["prompt"] == "describe the image" and record["method"] == "vcd"
        assert isinstance(record["answer"], str) and len(record["logprobs"]) <= 4
        assert all(set(t) == {"token", "logprob"} and t["logprob"] <= 0 for t in record["logprobs"])
    again = tmp_path / "again.jsonl"
    _run(
        "--model",
        tiny_llava,
        "--images",
        pictures,
        "--prompt",
        "describe the image",
        "--method",
        "vcd",
        "--max-new-tokens",
        4,
        "--batch-size",
        2,
        "--seed",
        3,
        "-o",
        again,
    )
    assert _lines(again) == records  # same seed and batches: same answers


def test_pope_mode_carries_the_question_fields(tiny_llava, pictures, tmp_path):
    questions = tmp_path / "pope.jsonl"
    lines = [
        {"question_id": 1, "image": "img0.png", "text": "is there a dog ?", "label": "yes"},
        {"question_id": 2, "image": "img1.png", "text": "is there a cat ?", "label": "no"},
    ]
    questions.write_bytes("".join(json.dumps(line) + "\r\n" for line in lines).encode())  # CRLF copies exist
    out = tmp_path / "pope-answers.jsonl"
    result = _run(
        "--model",
        tiny_llava,
        "--questions",
        questions,
        "--images",
        pictures,
        "--method",
        "m3id",
        "--param",
        "lam=0.5",
        "--max-new-tokens",
        3,
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    records = _lines(out)
    assert [(r["question_id"], r["label"], r["question"]) for r in records] == [
        (1, "yes", "is there a dog ?"),
        (2, "no", "is there a cat ?"),
    ]


def test_logprobs_come_from_the_distribution_decoded(tiny_llava, pictures, tmp_path):
    """With method none and greedy decoding, the first token's logprob is the model's own log-softmax."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    out = tmp_path / "plain.jsonl"
    assert (
        _run(
            "--model",
            tiny_llava,
            "--images",
            pictures,
            "--prompt",
            "describe",
            "--max-new-tokens",
            2,
            "-o",
            out,
        ).exit_code
        == 0
    )
    first = _lines(out)[0]
    if not first["logprobs"]:
        pytest.skip("the random model ended at once")
    processor = AutoProcessor.from_pretrained(tiny_llava)
    model = LlavaForConditionalGeneration.from_pretrained(tiny_llava).eval()
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "describe"}]}],
        add_generation_prompt=True,
    )
    inputs = processor(
        images=[Image.open(pictures / "img0.png").convert("RGB")], text=[text], return_tensors="pt"
    )
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
    logits[WORDS.index("<image>")] = -math.inf  # the saved generation config suppresses it
    expected = torch.log_softmax(logits, -1).max().item()
    assert first["logprobs"][0]["logprob"] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("method", ["dola", "deco", "opera"])
def test_beam_search_methods_answer_as_the_library_does(tiny_llava, pictures, tmp_path, method):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    import halluguard

    out = tmp_path / f"{method}.jsonl"
    result = _run("--model", tiny_llava, "--images", pictures, "--prompt", "describe", "--method", method,
                  "--num-beams", 2, "--max-new-tokens", 3, "--limit", 1, "-o", out)
    assert result.exit_code == 0, result.output
    (record,) = _lines(out)
    assert record["method"] == method
    if method == "opera":  # (its rollbacks rewrite the history: no per-token scores)
        assert record["logprobs"] is None
    else:
        assert all(t["logprob"] <= 0 for t in record["logprobs"])
    processor = AutoProcessor.from_pretrained(tiny_llava)
    model = LlavaForConditionalGeneration.from_pretrained(tiny_llava).eval()
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "describe"}]}],
        add_generation_prompt=True,
    )
    picture = Image.open(pictures / "img0.png").convert("RGB")
    inputs = processor(images=[picture], text=[text], return_tensors="pt")
    ids = halluguard.guard(model, method).generate(**inputs, num_beams=2, max_new_tokens=3, do_sample=False)
    new = ids[0, inputs["input_ids"].shape[1] :]
    expected = processor.tokenizer.decode(new, skip_special_tokens=True).strip()
    assert record["answer"] == expected


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompt", "x", "--questions", "q.jsonl"], "either --prompt"),
        ([], "either --prompt"),
        (["--prompt", "x", "--method", "nope"], "unknown method 'nope'; valid methods: none, vcd"),
        (["--prompt", "x", "--param", "alpha"], "KEY=VALUE"),
    ],
)
def test_usage_errors_exit_2(tiny_llava, pictures, tmp_path, args, message):
    result = _run("--model", tiny_llava, "--images", pictures, "-o", tmp_path / "o.jsonl", *args)
    assert result.exit_code == 2 and message in result.output


def test_missing_images_and_unknown_parameters_exit_2(tiny_llava, pictures, tmp_path):
    result = _run(
        "--model", tiny_llava, "--images", tmp_path / "nowhere", "--prompt", "x", "-o", tmp_path / "o.jsonl"
    )
    assert result.exit_code == 2 and "no such folder" in result.output
    result = _run(
        "--model",
        tiny_llava,
        "--images",
        pictures,
        "--prompt",
        "x",
        "--method",
        "vcd",
        "--param",
        "gamma=2",
        "-o",
        tmp_path / "o.jsonl",
    )
    assert result.exit_code == 2 and "gamma" in result.output


def test_unreachable_hub_model_says_how_to_pass_a_folder(pictures, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = _run(
        "--model",
        "someone/not-a-cached-model",
        "--images",
        pictures,
        "--prompt",
        "x",
        "-o",
        tmp_path / "o.jsonl",
    )
    assert result.exit_code == 2
    assert "someone/not-a-cached-model" in result.output and "--model DIR" in result.output


def test_unreadable_images_go_to_the_errors_file(tiny_llava, pictures, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.png").write_bytes((pictures / "img0.png").read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "mixed.jsonl"
    result = _run(
        "--model", tiny_llava, "--images", folder, "--prompt", "x", "--max-new-tokens", 2, "-o", out
    )
    assert result.exit_code == 1
    assert [r["image"] for r in _lines(out)] == ["good.png"]
    errors = _lines(tmp_path / "mixed.errors.jsonl")
    assert errors[0]["line"] == 1 and "broken.png" in errors[0]["reason"]


def test_limit_takes_the_first_questions(tiny_llava, pictures, tmp_path):
    questions = tmp_path / "pope.jsonl"
    questions.write_text("".join(json.dumps({"question_id": i, "image": "img0.png", "text": "is there a dog ?",
                                             "label": "yes"}) + "\n" for i in range(1, 4)))
    out = tmp_path / "limited.jsonl"
    result = _run("--model", tiny_llava, "--questions", questions, "--images", pictures, "--max-new-tokens", 2,
                  "--limit", 2, "-o", out)
    assert result.exit_code == 0, result.output
    assert [r["question_id"] for r in _lines(out)] == [1, 2]
