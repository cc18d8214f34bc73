"""``halluguard eval``: score runs, print a table, optionally write JSON and a PNG plot.

Register on a typer app with ``app.command("eval")(eval_command)``. Exit codes: 0 done (bad lines are
reported, not fatal); 1 nothing could be scored, or the plot could not be drawn; 2 usage errors
(a missing file, an unknown metric, annotations that do not fit the metric).

Example (the function can also be called directly)::

    halluguard eval before.jsonl after.jsonl --annotations gt_objects.json --json out.json --plot out.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from halluguard.metrics.runs import UsageError

METRIC_HELP = "chair | pope | amber | faithfulness"


def eval_command(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Run files (JSONL, one answer per line); 2+ are compared with the first."),
    ],
    annotations: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--annotations",
            "-a",
            help="Ground truth: COCO instances/captions JSON or a JSON table image_id -> objects "
            "(chair; repeat to merge), POPE question file(s) or folder (pope), "
            "AMBER annotations.json (amber); none for faithfulness.",
        ),
    ] = None,
    metric: Annotated[str, typer.Option("--metric", "-m", help=METRIC_HELP)] = "chair",
    text_field: Annotated[
        Optional[list[str]],
        typer.Option("--text-field", help="Answer field (default: answer, caption, text, response); repeat it "
                     "for one per run, e.g. 'eval fixed.jsonl --text-field answer --text-field corrected'."),
    ] = None,
    json_out: Annotated[
        Optional[str], typer.Option("--json", metavar="PATH", help="Write the full results as JSON to PATH ('-': stdout).")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="What to print: table (default), markdown or json.")
    ] = "table",
    plot: Annotated[
        Optional[Path], typer.Option("--plot", help="Write a PNG bar chart (one series per run).")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="POPE: strict yes/no parsing instead of POPE's.")
    ] = False,
    rules: Annotated[
        str,
        typer.Option(
            "--rules",
            help="official (default: as the official script) or corrected (CHAIR: halluguard's tokens, "
            "singulars and synonyms; AMBER: lenient yes/no parsing).",
        ),
    ] = "official",
    vocabulary: Annotated[
        Optional[Path],
        typer.Option("--vocabulary", help="CHAIR: JSON {label: [words]} extending the COCO vocabulary."),
    ] = None,
    vectors: Annotated[
        str,
        typer.Option(
            "--vectors",
            help="AMBER: spaCy model (name or path) with the word vectors of its similarity test.",
        ),
    ] = "en_core_web_lg",
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap resamples.", min=100)] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table on the terminal.")] = False,
    engine: Annotated[
        str, typer.Option("--engine", help="local, or ray (chair, pope, faithfulness scored on a Ray cluster).")
    ] = "local",
    ray_address: Annotated[
        Optional[str], typer.Option("--ray-address", help="Ray cluster address [default: start a local one].")
    ] = None,
) -> None:
    """Measure hallucination (CHAIR, POPE, AMBER, claim faithfulness) with 95 % intervals and paired tests."""
    from rich.console import Console

    from halluguard.metrics.evaluation import evaluate

    err = Console(stderr=True)
    try:
        report = evaluate(
            list(runs),
            list(annotations) if annotations else None,
            metric=metric,
            text_field=text_field,
            strict=strict,
            rules=rules,
            vocabulary=vocabulary,
            vectors=vectors,
            n_resamples=resamples,
            seed=seed,
            engine=engine,
            ray_address=ray_address,
        )
    except (UsageError, ConnectionError) as exc:
        typer.echo(f"halluguard: error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    for warning in report.settings.get("warnings", []):
        err.print(f"halluguard: warning: {warning}", highlight=False, markup=False)
    if output_format not in ("table", "markdown", "json"):
        typer.echo(f"halluguard: error: unknown --format {output_format!r}; valid: table, markdown, json", err=True)
        raise typer.Exit(code=2)
    if json_out == "-" or (output_format == "json" and not quiet):
        typer.echo(json.dumps(report.to_json(), indent=1))
    elif not quiet and output_format == "markdown":
        typer.echo(report.markdown())
    elif not quiet:
        out = Console()
        if not out.is_terminal:  # a file or a pipe: wide enough that no interval is cut short
            out = Console(width=max(out.width, 160))
        report.print(out)
    if json_out not in (None, "-"):
        report.write_json(json_out)
        if not quiet:
            err.print(f"wrote {json_out}", highlight=False)
    if plot is not None:
        try:
            report.plot(plot)
        except ImportError as exc:
            typer.echo(f"halluguard: error: {exc}", err=True)
            raise typer.Exit(code=1) from None
        if not quiet:
            err.print(f"wrote {plot}", highlight=False)
    empty = [r["run"] for r in report.runs if not r.get("n")]
    if empty:
        typer.echo(
            f"halluguard: error: nothing could be scored in: {', '.join(empty)} "
            "(check --text-field, the id fields and the annotations)",
            err=True,
        )
        raise typer.Exit(code=1)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - convenience entry point
    """Run ``eval_command`` as a stand-alone program (``python -m halluguard.metrics.cli``)."""
    app = typer.Typer(add_completion=False)
    app.command()(eval_command)
    app(args=argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
