"""The transformers range is declared once and tested at both ends; the locked set lies inside it."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> Requirement:
    quoted = re.findall(r'"(transformers[<>=!~][^"]*)"', (ROOT / "pyproject.toml").read_text())
    assert len(set(quoted)) == 1, f"pyproject.toml declares transformers once, found {quoted}"
    return Requirement(quoted[0])


def _matrix() -> list[Version]:
    match = re.search(r"^TRANSFORMERS_MATRIX \?= (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "the Makefile names the transformers releases CI tests besides the locked one"
    return [Version(v) for v in match.group(1).split()]


def _locked(name: str) -> Version:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return Version(line.split("==")[1])
    raise AssertionError(f"constraints.txt does not pin {name}")


def test_ci_tests_the_declared_lower_bound():
    lower = min(Version(spec.version) for spec in _declared().specifier if spec.operator == ">=")
    assert min(_matrix()) == lower, (
        "TRANSFORMERS_MATRIX must start at the lower bound pyproject.toml declares"
    )


def test_every_tested_release_is_inside_the_declared_range():
    declared = _declared().specifier
    for version in (*_matrix(), _locked("transformers")):
        assert declared.contains(version), f"transformers {version} is outside {declared}"


def test_ci_runs_the_readme_test_command_and_the_matrix():
    run = (ROOT / ".ci" / "run").read_text()
    assert "make test\n" in run and "make test-transformers" in run
