"""``halluguard generate``: answer images (or POPE questions) with a vision-language model, mitigated.

    halluguard generate --model llava-hf/llava-1.5-7b-hf --images val2014/ --prompt "Describe this image." \\
        --method vcd -o answers.jsonl
    halluguard generate --model ./llava-1.5-7b-hf --questions coco_pope_random.json --images val2014/ \\
        --method m3id --param lam=0.02 -o pope.jsonl

One JSON line per image (``--prompt``) or per question (``--questions``): ``image``, ``prompt`` or
``question``, every other field of the POPE line carried through (``question_id``, ``label``),
``answer``, ``method``, ``model`` and ``logprobs``: one ``{"token", "logprob"}`` per generated token
(up to the end-of-sequence token), the log-probability of the chosen token under the distribution
it was chosen from, i.e. the model's logits after the mitigation and the other logits processors
(``log_softmax`` of ``generate``'s ``output_scores``). Records whose image cannot be read go to
``OUT.errors.jsonl``. Exit codes: 0 all done, 1 some records failed, 2 usage error.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
METHOD_NAMES = (
    "none", "vcd", "icd", "vdd", "m3id", "dola", "deco", "opera", "pai", "vaf", "only", "memvr", "vista"
)
#: Methods whose ``generate`` gives no per-token scores (OPERA's rollbacks rewrite the history).
WITHOUT_SCORES = ("opera",)


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"halluguard: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["alpha=1.5", "noise_step=500"]`` -> ``{"alpha": 1.5, "noise_step": 500}``."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _usage_error(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _read_questions(path: Path) -> Iterator[tuple[int, dict]]:
    """POPE questions: JSON lines (or one JSON list); CRLF line ends are fine."""
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        for number, record in enumerate(json.loads(text), start=1):
            yield number, record
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, json.loads(line)


def _records(images: Path, prompt: str | None, questions: Path | None) -> list[dict]:
    """The work list: one dict per image or question, with ``_line`` (1-based) for error reports."""
    if questions is None:
        files = sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        return [{"_line": n, "image": p.name, "prompt": prompt} for n, p in enumerate(files, start=1)]
    records = []
    try:
        for number, raw in _read_questions(questions):
            if not isinstance(raw, dict) or "image" not in raw or "text" not in raw:
                raise _usage_error(f"{questions}:{number}: a POPE question needs 'image' and 'text' fields")
            record = {k: v for k, v in raw.items() if k != "text"}
            record["question"] = raw["text"]
            record["_line"] = number
            records.append(record)
    except json.JSONDecodeError as error:
        raise _usage_error(f"{questions}: not JSON lines ({error})") from None
    return records


def _load(model_id: str, device: str, dtype: str):
    """Processor and model from a local folder or a hub id, with an actionable message on failure."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    local = Path(model_id).expanduser()
    is_local = local.exists()
    if not is_local and (model_id.startswith((".", "/", "~")) or model_id.count("/") > 1):
        raise _usage_error(f"--model {model_id}: no such folder")
    source = str(local) if is_local else model_id
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise _usage_error(f"--dtype {dtype}: expected auto, float32, bfloat16 or float16")
    try:
        processor = AutoProcessor.from_pretrained(source, local_files_only=is_local)
        model = AutoModelForImageTextToText.from_pretrained(
            source, dtype=torch_dtype, local_files_only=is_local
        )
    except (OSError, ValueError, KeyError) as error:
        if is_local:
            raise _usage_error(
                f"could not load a vision-language model and its processor from {local}: {error}"
            )
        raise _usage_error(
            f"could not load the model '{model_id}' from the Hugging Face Hub "
            f"({type(error).__name__}: {error}). "
            "Without network access, download it where you have one "
            f"(e.g. `hf download {model_id} --local-dir "
            f"DIR`), copy DIR here and pass --model DIR."
        ) from None
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.padding_side = "left"
    return processor, model.to(device).eval()


def _prompt_text(processor, text: str) -> str:
    """The model's chat format for one image and ``text``.

    Processors that add the image placeholders themselves (PaliGemma, InstructBLIP) get ``text``.
    """
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        return processor.apply_chat_template(messages, add_generation_prompt=True)
    name = type(processor).__name__
    image_token = getattr(processor, "image_token", None)
    if image_token and not name.startswith(("PaliGemma", "InstructBlip", "Blip")):
        return f"{image_token}\n{text}"
    return text


def _eos_ids(model) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def _answer_batch(
    generator, processor, model, batch: list[dict], pictures: list, options: dict
) -> list[dict]:
    tokenizer = getattr(processor, "tokenizer", processor)
    texts = [_prompt_text(processor, r.get("question", r.get("prompt")) or "") for r in batch]
    inputs = processor(images=pictures, text=texts, return_tensors="pt", padding=True).to(model.device)
    if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    scored = options["method"] not in WITHOUT_SCORES
    out = generator.generate(
        **inputs,
        max_new_tokens=options["max_new_tokens"],
        do_sample=options["sample"],
        num_beams=options["num_beams"],
        return_dict_in_generate=True,
        output_scores=scored,
    )
    prompt_length = inputs["input_ids"].shape[1]
    new_tokens = out.sequences[:, prompt_length:]
    logprobs = None
    if scored:
        beams = getattr(out, "beam_indices", None)
        # beam search's scores are log-probabilities already (of each beam's own step)
        logprobs = model.compute_transition_scores(
            out.sequences, out.scores, beams, normalize_logits=beams is None
        )
    eos = _eos_ids(model)
    answers = []
    for row, record in enumerate(batch):
        ids: list[int] = []
        for token in new_tokens[row].tolist():
            if token in eos:
                break
            ids.append(token)
        answer = {k: v for k, v in record.items() if not k.startswith("_")}
        answer["answer"] = tokenizer.decode(ids, skip_special_tokens=True).strip()
        answer["method"] = options["method"]
        answer["model"] = options["model"]
        answer["logprobs"] = None if logprobs is None else [
            {"token": tokenizer.decode([token]), "logprob": round(float(logprobs[row, i]), 6)}
            for i, token in enumerate(ids)
        ]
        answers.append(answer)
    return answers


def generate_command(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="Hub id or local folder of a vision-language model "
        "(LLaVA, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL, SmolVLM/Idefics3, PaliGemma, InstructBLIP).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the answers (JSONL)."),
    images: Path | None = typer.Option(
        None, "--images", help="Folder of the images (POPE 'image' paths are relative to it)."
    ),
    prompt: str | None = typer.Option(
        None, "--prompt", help="Instruction asked about every image in --images."
    ),
    questions: Path | None = typer.Option(
        None, "--questions", help="POPE question file (JSON lines with question_id, image, text, label)."
    ),
    method: str = typer.Option(
        "none", "--method", help="Mitigation while decoding: none, vcd, icd, vdd, m3id, dola, deco."
    ),
    param: list[str] | None = typer.Option(
        None,
        "--param",
        help="Method parameter KEY=VALUE, repeatable (e.g. --param alpha=1 --param noise_step=500).",
    ),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, help="Tokens to generate per answer."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts per generate call."),
    device: str = typer.Option(
        "auto", "--device", help="cpu, cuda, cuda:1 ... [default: cuda when available]."
    ),
    dtype: str = typer.Option(
        "auto", "--dtype", help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of VCD's noise and of sampling."),
    sample: bool = typer.Option(False, "--sample/--greedy", help="Sample instead of greedy decoding."),
    num_beams: int = typer.Option(1, "--num-beams", min=1, help="Beam search with N beams (1: none)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N images or questions."),
) -> None:
    """Generate answers with a vision-language model, optionally mitigated (VCD, ICD, VDD, M3ID, DoLa, DeCo,
    OPERA, PAI, VAF, ONLY, MemVR, VISTA; OPERA's answers carry no per-token logprobs).
    """
    if (prompt is None) == (questions is None):
        raise _usage_error("give either --prompt TEXT (one answer per image) or --questions POPE_FILE")
    if images is None:
        raise _usage_error("--images DIR is required")
    if not images.is_dir():
        raise _usage_error(f"--images {images}: no such folder")
    if questions is not None and not questions.is_file():
        raise _usage_error(f"--questions {questions}: no such file")
    if method.lower() not in METHOD_NAMES:
        raise _usage_error(f"unknown method {method!r}; valid methods: {', '.join(METHOD_NAMES)}")
    method = method.lower()
    params = _parse_params(param)
    records = _records(images, prompt, questions)[:limit]
    if not records:
        raise _usage_error(f"no images found in {images}")

    from PIL import Image

    from halluguard.decoders.guarded import GuardError, guard

    processor, vlm = _load(model, device, dtype)
    if method == "icd":
        params.setdefault("tokenizer", processor)
    try:
        generator = guard(vlm, method, seed=seed, **params)
    except (GuardError, TypeError, ValueError) as error:
        raise _usage_error(str(error)) from None
    options = {"max_new_tokens": max_new_tokens, "sample": sample, "num_beams": num_beams, "method": method,
               "model": model}

    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".tmp")
    errors_path = output.with_name(output.stem + ".errors.jsonl")
    failures: list[dict] = []
    started, written = time.perf_counter(), 0
    with open(temporary, "w", encoding="utf-8") as handle:
        for start in range(0, len(records), batch_size):
            batch, pictures = [], []
            for record in records[start : start + batch_size]:
                try:
                    with Image.open(images / record["image"]) as picture:
                        pictures.append(picture.convert("RGB"))
                    batch.append(record)
                except (OSError, ValueError) as error:
                    failures.append(
                        {
                            "line": record["_line"],
                            "id": record.get("question_id", record["image"]),
                            "field": "image",
                            "reason": f"cannot read {record['image']}: {error}",
                        }
                    )
            if not batch:
                continue
            for answer in _answer_batch(generator, processor, vlm, batch, pictures, options):
                handle.write(json.dumps(answer, ensure_ascii=False) + "\n")
                written += 1
    os.replace(temporary, output)
    if failures:
        errors_path.write_text(
            "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures), encoding="utf-8"
        )
    elapsed = time.perf_counter() - started
    typer.echo(
        f"wrote {written} answers to {output} (method {method}, {elapsed:.1f} s)"
        + (f"; {len(failures)} failed, see {errors_path}" if failures else ""),
        err=True,
    )
    if failures:
        raise typer.Exit(EXIT_SOME_FAILED)
