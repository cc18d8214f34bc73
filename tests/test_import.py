"""`import halluguard` stays light: no torch, transformers, spaCy or ultralytics."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "spacy", "ultralytics", "matplotlib", "ray")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_halluguard_pulls_in_no_heavy_library():
    loaded = _modules_after("import halluguard")
    assert not {m for m in HEAVY if m in loaded}


def test_cli_help_pulls_in_no_heavy_library():
    loaded = _modules_after("import halluguard.cli")
    assert not {m for m in HEAVY if m in loaded}


def test_public_names_resolve_lazily():
    import halluguard

    assert callable(halluguard.fix)
    assert "guard" in dir(halluguard)
