"""Shared fixtures: repository paths, the real data beside the project, CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
COCO500 = SHARED_DATA / "coco500"

# Nothing in the test suite may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture
def coco500() -> Path:
    """The real LLaVA/MiniGPT-4 captions of 500 COCO images (skipped when absent)."""
    if not (COCO500 / "gt_objects.json").exists():
        pytest.skip("../shared/data/coco500 is not present")
    return COCO500


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``halluguard ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "halluguard.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli
