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

app = typer.Typer(
    name="halluguard",
    help="Make vision-language models hallucinate less, and prove it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"halluguard: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


@app.command("fix")
def fix_command(
    input: Path = typer.Argument(..., help="JSONL of answers: one JSON object per line."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output JSONL [default: INPUT.fixed.jsonl]."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder that record 'image' paths are relative to "
                                          "[default: the input file's folder]."),
    detector: str = typer.Option("none", "--detector", "-d", help="Detector spec: none, person, yolo11n.pt, any .pt/.onnx, "
                                 "annotations:FILE, owlv2:ID_OR_PATH."),
    text_field: Optional[str] = typer.Option(None, "--text-field", help="Field holding the answer "
                                             "[default: answer, else caption, else text]."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary line."),
    json_summary: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Correct what the image does not support in each answer (streaming, loss-free)."""
    from halluguard.io import ResumeMismatch
    from halluguard.pipeline import fix
    from halluguard.progress import DelayedProgress

    if not input.is_file():
        raise _usage_error(f"input not found: {input}")
    if images is not None and not images.is_dir():
        raise _usage_error(f"--images is not a folder: {images}")
    output = output or input.with_name(input.name.removesuffix(".jsonl") + ".fixed.jsonl")
    if output.resolve() == input.resolve():
        raise _usage_error("--output must differ from the input")
    progress = DelayedProgress(input.stat().st_size, quiet=quiet)
    try:
        summary = fix(input, output, detector=detector, images=images, text_field=text_field,
                      resume=resume, on_progress=progress.update)
    except (ResumeMismatch, ValueError, FileNotFoundError) as exc:
        raise _usage_error(str(exc))
    finally:
        progress.close()
    if json_summary:
        typer.echo(json.dumps(summary.to_json()))
    elif not quiet:
        typer.echo(summary.line(), err=True)
    raise typer.Exit(EXIT_SOME_FAILED if summary.errors else EXIT_OK)


@app.command("demo")
def demo_command(
    output: Path = typer.Option(Path("out/demo"), "--output", "-o", help="Folder for the demo's outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary."),
) -> None:
    """Run fix (and eval) offline on the project's example set and print before/after figures."""
    from halluguard.demo import run_demo

    raise typer.Exit(run_demo(output, quiet=quiet))


def _register_optional_commands() -> None:
    """Commands that live with their subsystem (their modules import heavy libraries lazily)."""
    from importlib import import_module

    for name, module, attr in (
        ("eval", "halluguard.metrics.cli", "eval_command"),
        ("generate", "halluguard.decoders.cli", "generate_command"),
        ("cooccurrence", "halluguard.correctors.cli", "cooccurrence_command"),
    ):
        try:
            command = getattr(import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        app.command(name)(command)


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
