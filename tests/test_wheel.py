"""A wheel built from the repository works outside the checkout: --version and the demo's fast path."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel installed alone into a folder (its dependencies come from this environment)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--disable-pip-version-check", "-w", str(work / "dist"), str(ROOT)], check=True)
    wheel = next((work / "dist").glob("halluguard_vlm-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--disable-pip-version-check",
                    "--target", str(work / "site"), str(wheel)], check=True)
    return work


def _run(installed: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    # -S: no site hooks, so the checkout's editable install cannot stand in for the wheel
    path = os.pathsep.join([str(installed / "site"), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-S", *args], cwd=installed, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_wheel_holds_the_package_data(installed):
    site = installed / "site" / "halluguard"
    assert (site / "examples" / "answers.jsonl").is_file() and (site / "examples" / "labels.json").is_file()
    assert (site / "data" / "chair_synonyms.txt").is_file()
    shipped = ROOT / "halluguard" / "data" / "coco_vocabulary.json"
    assert (site / "data" / "coco_vocabulary.json").read_bytes() == shipped.read_bytes()
    assert (site / "lab" / "assets" / "detector.pt").is_file()
    done = _run(installed, "-c", "import halluguard; print(halluguard.__file__)")
    assert done.returncode == 0 and str(installed / "site") in done.stdout, done.stderr


def test_version_and_demo_from_the_wheel(installed):
    import halluguard

    done = _run(installed, "-m", "halluguard.cli", "--version")
    assert done.stdout.strip() == f"halluguard {halluguard.__version__}", done.stderr
    done = _run(installed, "-m", "halluguard.cli", "demo", "--images", "8", "--quiet", "-o", "out")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "CHAIR_s" in done.stdout and "In plain words" in done.stdout
    assert (installed / "out" / "lab" / "lab_table.txt").is_file()
