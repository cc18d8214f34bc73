"""Run the decoder tests on other transformers releases than the locked one, beside the same torch.

    python .ci/transformers_matrix.py 5.17.0 5.25.0      (what `make test-transformers` runs)

Each release is installed without its dependencies into its own folder under the virtual
environment (``.venv/transformers-X``) and put first on ``PYTHONPATH``; a dependency the locked set
does not satisfy is added to that folder at the newest version the release accepts (5.17 wants
huggingface-hub < 2). A dependency the package index does not have (5.25's ``kernels``) is left out:
the tests build their models from configs, and ``USE_HUB_KERNELS=NO`` keeps transformers from
asking for it. Prints one line per release and exits non-zero if any release fails or runs no test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
TESTS = "tests/decoders"


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", *args],
        capture_output=True,
        text=True,
    )


def _unmet(folder: Path) -> list[Requirement]:
    """The release's own requirements (no extras) that neither its folder nor the environment meets."""
    dist = next(metadata.distributions(path=[str(folder)], name="transformers"))
    unmet = []
    for line in dist.requires or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        found = list(metadata.distributions(path=[str(folder), *sys.path], name=requirement.name))
        if not found or not requirement.specifier.contains(found[0].version, prereleases=True):
            unmet.append(requirement)
    return unmet


def install(version: str) -> Path:
    folder = ROOT / ".venv" / f"transformers-{version}"
    if not (folder / "transformers").is_dir():
        result = _pip("--target", str(folder), f"transformers=={version}")
        if result.returncode:
            sys.exit(f"could not install transformers=={version}:\n{result.stderr}")
    for requirement in _unmet(folder):
        result = _pip("--target", str(folder), "--upgrade", str(requirement))
        if result.returncode:
            print(
                f"  transformers {version}: {requirement} is not on the package index; left out", flush=True
            )
    return folder


def run(version: str) -> bool:
    start = time.monotonic()
    folder = install(version)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
        "USE_HUB_KERNELS": "NO",
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import transformers; print(transformers.__version__)"],
        env=env,
        capture_output=True,
        text=True,
    )
    if probe.stdout.strip() != version:
        print(f"transformers {version}: imports as {probe.stdout.strip() or probe.stderr.strip()[-300:]}")
        return False
    result = subprocess.run(
        [sys.executable, "-m", "pytest", TESTS, "-q", "-p", "no:cacheprovider"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    summary = next(
        (
            line
            for line in reversed(result.stdout.splitlines())
            if re.search(r"passed|failed|error|no tests", line)
        ),
        "",
    )
    print(
        f"transformers {version}: {summary.strip('= ')} ({time.monotonic() - start:.0f} s with the install)",
        flush=True,
    )
    if result.returncode == 5:
        print(f"transformers {version}: pytest collected no tests in {TESTS}")
        return False
    if result.returncode:
        print(result.stdout[-6000:])
    return result.returncode == 0


def main(versions: list[str]) -> int:
    if not versions:
        sys.exit("usage: transformers_matrix.py VERSION [VERSION ...]")
    results = [run(version) for version in versions]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
