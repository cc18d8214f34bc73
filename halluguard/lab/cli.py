"""``halluguard lab``: the lab from the command line: render test scenes with their ground truth, name the
shipped models, so that ``generate``, ``fix`` and ``eval`` run on lab images as on any photos.

    halluguard lab render -o lab --images 50
    halluguard generate --model "$(halluguard lab path captioner)" --images lab/images \\
        --prompt "describe the image." --max-new-tokens 32 -o lab/captions.jsonl
    halluguard fix lab/captions.jsonl --images lab/images --detector "$(halluguard lab path detector)" \\
        --vocabulary lab/vocabulary.json -o lab/fixed.jsonl
    halluguard eval lab/fixed.jsonl --annotations lab/labels.json --vocabulary lab/vocabulary.json \\
        --text-field answer --text-field corrected
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer

lab_app = typer.Typer(
    help="The hallucination lab: render test scenes with their ground truth; the shipped models' paths.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@lab_app.command("render")
def render_command(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for images/, labels.json, truth.jsonl."),
    images: int = typer.Option(20, "--images", min=1, help="How many test scenes."),
    seed: int = typer.Option(0, "--seed", help="Seed of the scenes [default: 0, the lab's test split]."),
    prior_breaking: float = typer.Option(0.5, "--prior-breaking", min=0.0, max=1.0,
                                         help="Share of scenes that break the co-occurrence prior."),
) -> None:
    """Render lab test scenes as PNGs, with their ground truth in the formats fix and eval read."""
    from halluguard.lab import VOCABULARY
    from halluguard.lab.evaluate import load_data

    data = load_data(images, seed, prior_breaking)
    folder = output / "images"
    folder.mkdir(parents=True, exist_ok=True)
    labels, lines = {}, []
    for truth, image in zip(data.truths, data.images):
        name = f"{truth['name']}.png"
        image.save(folder / name)
        labels[name] = [{"label": o["kind"], "box": o["box"]} for o in truth["objects"]]
        lines.append(json.dumps({"image": f"images/{name}", "kinds": truth["kinds"], "caption": truth["caption"],
                                 "prior_break": truth["prior_break"]}))
    (output / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    (output / "truth.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copyfile(VOCABULARY, output / "vocabulary.json")
    typer.echo(f"wrote {len(lines)} scenes to {folder}, their objects to {output / 'labels.json'} (the annotations "
               f"fix and eval read), template captions to {output / 'truth.jsonl'}, the lab's words to "
               f"{output / 'vocabulary.json'}")


@lab_app.command("path")
def path_command(
    what: str = typer.Argument(..., help="captioner, detector or vocabulary."),
) -> None:
    """Print the path of a shipped lab model (for --model, --detector, --vocabulary)."""
    from halluguard.lab import CAPTIONER, DETECTOR, VOCABULARY

    paths = {"captioner": CAPTIONER, "detector": DETECTOR, "vocabulary": VOCABULARY}
    if what not in paths:
        typer.echo(f"halluguard: error: unknown lab asset {what!r}; valid: {', '.join(paths)}", err=True)
        raise typer.Exit(2)
    typer.echo(str(paths[what]))
