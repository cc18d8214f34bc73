"""``halluguard demo``: the product end to end, offline, on the project's example set.

Runs ``fix`` on ``examples/answers.jsonl`` and prints what changed.
"""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_demo(output: Path, quiet: bool = False) -> int:
    """Run the demo, write its outputs under ``output``; returns the exit code."""
    from halluguard.pipeline import fix

    if not (EXAMPLES / "answers.jsonl").exists():
        print(f"halluguard demo: the example set is missing ({EXAMPLES}); run it from a source checkout")
        return 2
    output.mkdir(parents=True, exist_ok=True)
    fixed = output / "examples.fixed.jsonl"
    summary = fix(EXAMPLES / "answers.jsonl", fixed, detector="none")
    print(summary.line())
    if not quiet:
        for record in map(json.loads, fixed.read_text().splitlines()):
            print(f"- {record['id']}: {record['corrected']}")
    return 1 if summary.errors else 0
