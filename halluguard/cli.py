"""The ``halluguard`` command line.

Exit codes: 0 every record done; 1 some records failed (the rest written, failures in the
errors file); 2 usage error (bad option, missing input, unknown name).

    halluguard fix answers.jsonl -o fixed.jsonl --detector annotations:labels.json
    halluguard eval answers.jsonl fixed.jsonl --annotations labels.json --text-field corrected
    halluguard demo
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from halluguard.metrics.harnesses import TABLE_SUFFIXES

app = typer.Typer(
    name="halluguard",
    help="Make vision-language models hallucinate less, and prove it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: ...]" and "{label: [nouns]}" print as written
)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _print_version(value: bool) -> None:
    if value:
        from halluguard import __version__

        typer.echo(f"halluguard {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the INFO lines and banners of Ray and "
                                 "Ultralytics (hidden by default)."),
) -> None:
    """Make vision-language models hallucinate less, and prove it."""
    import os

    if verbose:
        os.environ["HALLUGUARD_VERBOSE"] = "1"


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"halluguard: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


@app.command("fix")
def fix_command(
    input: Path = typer.Argument(..., help="JSONL of answers: one JSON object per line (or a VLMEvalKit "
                                 "prediction table: .tsv, .csv, .xlsx)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output JSONL [default: INPUT.fixed.jsonl]."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder that record 'image' paths are relative to "
                                          "[default: the input file's folder]."),
    detector: str = typer.Option("yolo11n.pt", "--detector", "-d", help="Detector: yolo11n.pt (fetched by ultralytics "
                                 "when online), any .pt/.onnx path, person, annotations:FILE, owlv2:ID_OR_PATH, none."),
    detector_labels: Optional[str] = typer.Option(None, "--detector-labels", help="For annotations: the labels the "
                                                  "file is exhaustive for: coco (the 80 classes) or a JSON list file "
                                                  "[default: the labels that occur in the file]."),
    device: Optional[str] = typer.Option(None, "--device", help="Detector device, e.g. cpu, cuda:0 [default: best available]."),
    mode: str = typer.Option("woodpecker", "--mode", help="woodpecker: rewrite what the detector contradicts; "
                             "lure: also remove claims with a high hallucination-suspicion score."),
    unverifiable: str = typer.Option("keep", "--unverifiable", help="Claims the detector cannot check: keep, hedge, remove."),
    grounding: bool = typer.Option(False, "--grounding", help="Append each supported object's box: 'a dog [x1, y1, x2, y2]'."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Detector score from which a box counts as seen."),
    imgsz: Optional[int] = typer.Option(None, "--imgsz", help="YOLO inference size [default: the size the "
                                        "checkpoint was trained at]."),
    vocabulary: Optional[Path] = typer.Option(None, "--vocabulary", help="JSON {label: [nouns]}: the labels and nouns claims are read with, instead of the COCO vocabulary."),
    cooccurrence: Optional[Path] = typer.Option(None, "--cooccurrence", help="Co-occurrence statistics for --mode lure "
                                                "(from 'halluguard cooccurrence')."),
    rewriter: Optional[str] = typer.Option(None, "--rewriter", help="A transformers causal LM (path or hub id) to rewrite "
                                           "with, instead of the rule-based rewriter."),
    text_field: Optional[str] = typer.Option(None, "--text-field", help="Field holding the answer "
                                             "[default: answer, else caption, else text]."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, metavar="N",
                                          help="Processes that parse and correct, each with its own spaCy "
                                          "[default: one per usable core, at most 8, with the annotations "
                                          "detector; 1 with a model detector]."),
    engine: str = typer.Option("local", "--engine", help="local, or ray (Ray Data; INPUT may be a folder of shards)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address [default: start a "
                                              "local one]."),
    num_gpus: float = typer.Option(0, "--num-gpus", help="GPUs per detector actor (--engine ray)."),
    concurrency: int = typer.Option(1, "--concurrency", help="Actors per stage (--engine ray)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary line."),
    json_out: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write the summary as JSON to "
                                           "PATH ('-': stdout), as eval --json writes its report."),
) -> None:
    """Correct what the image does not support in each answer (streaming, loss-free)."""
    from halluguard.detectors.base import DetectorError
    from halluguard.io import ResumeMismatch
    from halluguard.pipeline import fix
    from halluguard.progress import DelayedProgress

    if engine not in ("local", "ray"):
        raise _usage_error(f"unknown engine {engine!r}; valid engines: local, ray")
    if not (input.is_file() or (engine == "ray" and input.is_dir())):
        raise _usage_error(f"input not found: {input}" + (" (a folder of shards needs --engine ray)" if input.is_dir() else ""))
    if images is not None and not images.is_dir():
        raise _usage_error(f"--images is not a folder: {images}")
    stem = input.stem if input.suffix.lower() in TABLE_SUFFIXES else input.name.removesuffix(".jsonl")
    output = output or input.with_name(stem + (".fixed.jsonl" if input.is_file() else ".fixed"))
    if output.resolve() == input.resolve():
        raise _usage_error("--output must differ from the input")
    if input.is_file() and input.suffix.lower() in TABLE_SUFFIXES:
        input, images = _table_as_jsonl(input, output), images or input.parent
    options = {"mode": mode, "unverifiable": unverifiable, "grounding": grounding, "threshold": threshold,
               "vocabulary": str(vocabulary) if vocabulary else None, "device": device, "imgsz": imgsz,
               "detector_labels": detector_labels,
               "cooccurrence": str(cooccurrence) if cooccurrence else None, "rewriter": rewriter}
    options = {k: v for k, v in options.items() if v not in (None, False)}
    if engine == "ray":
        if workers is not None:
            raise _usage_error("--workers is for the local engine; Ray's is --concurrency")
        if resume:
            raise _usage_error("--resume is for the local engine; a Ray run restarts its failed tasks itself")
        from halluguard.integrations.ray import fix_files

        try:
            summary = fix_files(input, output, detector=detector, options=options, text_field=text_field,
                                images=images, address=ray_address, num_gpus=num_gpus, concurrency=concurrency)
        except (ConnectionError, DetectorError, ValueError, FileNotFoundError) as exc:
            raise _usage_error(str(exc))
    else:
        progress = DelayedProgress(input.stat().st_size, quiet=quiet)
        try:
            summary = fix(input, output, detector=detector, images=images, text_field=text_field,
                          resume=resume, options=options, on_progress=progress.update, workers=workers)
        except (ResumeMismatch, DetectorError, ValueError, FileNotFoundError) as exc:
            raise _usage_error(str(exc))
        finally:
            progress.close()
    if json_out == "-":
        typer.echo(json.dumps(summary.to_json()))
    elif json_out:
        Path(json_out).write_text(json.dumps(summary.to_json()) + "\n")
    if json_out != "-" and not quiet:
        typer.echo(summary.line(), err=True)
    raise typer.Exit(EXIT_SOME_FAILED if summary.errors else EXIT_OK)


def _table_as_jsonl(table: Path, output: Path) -> Path:
    """A VLMEvalKit prediction table (TSV/CSV/XLSX) as fix's JSON lines, beside the output (kept for --resume)."""
    from halluguard.metrics.harnesses import answers_to_fix, read_table

    try:
        rows = read_table(table)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise _usage_error(f"{table}: not a readable prediction table: {exc}")
    if rows and "prediction" not in rows[0]:
        raise _usage_error(f"{table}: no 'prediction' column (VLMEvalKit's answer column); columns: "
                           + ", ".join(rows[0]))
    converted = output.with_name(output.name.removesuffix(".jsonl") + ".input.jsonl")
    converted.parent.mkdir(parents=True, exist_ok=True)
    converted.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in answers_to_fix(rows)),
                         encoding="utf-8")
    return converted


@app.command("demo")
def demo_command(
    output: Path = typer.Option(Path("out/demo"), "--output", "-o", help="Folder for the demo's outputs."),
    full: bool = typer.Option(False, "--full", help="The lab on 1,000 images (a few minutes) instead of 300."),
    images: Optional[int] = typer.Option(None, "--images", min=8, help="Lab test images [default: 300; 1000 "
                                         "with --full]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no example corrections."),
) -> None:
    """fix and eval offline on real photos, then generate -> fix -> eval on the lab (about a minute)."""
    from halluguard.demo import run_demo

    raise typer.Exit(run_demo(output, quiet=quiet, full=full, n_images=images))


def _register_optional_commands() -> None:
    """Commands that live with their subsystem (their modules import heavy libraries lazily)."""
    from importlib import import_module

    for name, module, attr in (
        ("eval", "halluguard.metrics.cli", "eval_command"),
        ("generate", "halluguard.decoders.cli", "generate_command"),
        ("cooccurrence", "halluguard.correctors.cli", "cooccurrence_command"),
    ):
        app.command(name)(getattr(import_module(module), attr))
    app.add_typer(import_module("halluguard.lab.cli").lab_app, name="lab")


_register_optional_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        app(args=argv, prog_name="halluguard", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
