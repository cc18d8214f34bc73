"""Command-line pieces of the text stages, mounted on ``halluguard`` by :mod:`halluguard.cli`.

halluguard cooccurrence instances_train2017.json -o stats.json
"""

from __future__ import annotations

from pathlib import Path

import typer


def cooccurrence_command(
    annotations: Path = typer.Argument(
        ..., help="COCO instances JSON, or {image_id: [label, ...]} JSON (labels may be {'label': ...})."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the statistics (JSON)."),
) -> None:
    """Count which objects appear together, for `halluguard fix --mode lure --cooccurrence`."""
    from halluguard.correctors.lure import CooccurrenceStats

    if not annotations.is_file():
        typer.echo(f"halluguard: error: annotations not found: {annotations}", err=True)
        raise typer.Exit(2)
    try:
        stats = CooccurrenceStats.from_annotations(annotations)
    except (ValueError, KeyError, TypeError) as error:
        typer.echo(f"halluguard: error: {error}", err=True)
        raise typer.Exit(2) from error
    if stats.n_images == 0:
        typer.echo(f"halluguard: error: no images in {annotations}", err=True)
        raise typer.Exit(2)
    output.parent.mkdir(parents=True, exist_ok=True)
    stats.save(output)
    typer.echo(f"{stats.n_images} images, {len(stats.counts)} labels -> {output}")
