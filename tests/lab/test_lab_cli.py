"""The README's lab recipe runs as written, and corrects as the lab harness (run_lab) corrects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from halluguard.lab import CAPTIONER, DETECTOR

pytestmark = pytest.mark.skipif(not (CAPTIONER / "config.json").exists() or not DETECTOR.exists(),
                                reason="the lab's trained models are not installed")
ROOT = Path(__file__).resolve().parents[2]


def _recipe() -> list[str]:
    """The lab recipe's commands, as the README shows them."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- lab recipe -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        line = line.split("  #", 1)[0].rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            commands.append(current.strip())
        current = ""
    return commands


def test_the_readme_lab_recipe_runs_and_fixes_as_the_harness(tmp_path):
    commands = _recipe()
    assert [c.split()[1] for c in commands] == ["lab", "generate", "fix", "eval"]
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for command in commands:
        command = command.replace("--images 50", "--images 12")
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    eval_out = done.stdout

    from halluguard.lab.evaluate import Captioner, Corrections, load_data

    data = load_data(12)
    names = [t["name"] for t in data.truths]
    captions = {Path(r["image"]).stem: r["answer"]
                for r in map(json.loads, (tmp_path / "lab" / "captions.jsonl").read_text().splitlines())}
    expected = Captioner(batch_size=12).caption(data.images)
    assert [captions[name] for name in names] == expected
    fixed = {Path(r["image"]).stem: r["corrected"]
             for r in map(json.loads, (tmp_path / "lab" / "fixed.jsonl").read_text().splitlines())}
    harness = Corrections(data, tmp_path / "harness", weak=False).correct("fixed", expected)
    assert [fixed[name] for name in names] == harness
    assert any(a != b for a, b in zip(expected, harness)), "the recipe's scenes should need a correction"
    assert "CHAIR" in eval_out and "warning" not in eval_out
