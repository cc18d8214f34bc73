"""halluguard: make vision-language models hallucinate less, and prove it.

The public face is three functions, imported lazily so that ``import halluguard``
stays fast and pulls in neither torch, transformers, spaCy nor ultralytics:

>>> import halluguard
>>> sorted(halluguard.__all__)
['evaluate', 'fix', 'guard']

- ``guard(model, "vcd", ...)``: a drop-in wrapper whose ``generate`` mitigates hallucination.
- ``fix("answers.jsonl", "fixed.jsonl", ...)``: the post-hoc corrector, streaming and loss-free.
- ``evaluate(...)``: CHAIR, POPE and AMBER with confidence intervals.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["guard", "fix", "evaluate"]

_LAZY = {
    "guard": ("halluguard.decoders", "guard"),
    "fix": ("halluguard.pipeline", "fix"),
    "evaluate": ("halluguard.metrics", "evaluate"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'halluguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
