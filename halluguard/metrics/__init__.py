"""Measuring hallucination: CHAIR, POPE, AMBER, claim-level faithfulness, with honest statistics.

>>> from halluguard.metrics import evaluate
>>> report = evaluate([{"image_id": 1, "caption": "A dog on a sofa."}], {"1": ["dog"]}, n_resamples=100)
>>> report.runs[0]["chair_s"], report.runs[0]["chair_i"], report.runs[0]["n"]
(100.0, 50.0, 1)

Modules: :mod:`.chair`, :mod:`.pope`, :mod:`.amber`, :mod:`.faithfulness` (the metrics),
:mod:`.coco_vocabulary` (which words name which COCO object), :mod:`.statistics` (bootstrap intervals,
paired tests), :mod:`.report` (table, JSON, plot), :mod:`.cli` (``halluguard eval``).
Importing this package loads neither numpy nor matplotlib; they are imported when needed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["METRICS", "Report", "UsageError", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "METRICS"):
        from halluguard.metrics import evaluation

        return getattr(evaluation, name)
    if name == "Report":
        from halluguard.metrics.report import Report

        return Report
    if name == "UsageError":
        from halluguard.metrics.runs import UsageError

        return UsageError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
