"""The command line's help reads as written: bracketed texts, flags without metavars, --version."""

from __future__ import annotations

import subprocess
import sys

import pytest

import halluguard


def _help(*command: str) -> str:
    out = subprocess.run([sys.executable, "-m", "halluguard.cli", *command, "--help"], capture_output=True,
                         text=True, check=True)
    return " ".join(out.stdout.split())  # help wraps at 80 columns


@pytest.mark.parametrize(
    ("command", "texts"),
    [
        (("fix",), ["[default: INPUT.fixed.jsonl]", "JSON {label: [nouns]}: the labels and nouns", "'a dog [x1, y1, x2, y2]'",
                    "[default: the input file's folder]"]),
        (("eval",), ["CHAIR: JSON {label: [words]} extending", "[default: en_core_web_lg]"]),
    ],
)
def test_bracketed_help_texts_are_printed(command, texts):
    text = _help(*command)
    for expected in texts:
        assert expected in text, expected
    assert "<bool>" not in text


def test_version():
    out = subprocess.run([sys.executable, "-m", "halluguard.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"halluguard {halluguard.__version__}"
