"""Claim-level faithfulness of ``halluguard fix`` output: how many claims the image supports.

The idea of FaithScore (Jing et al., 2023: split an answer into atomic claims, verify each against the
image), with halluguard's own claims and verifier. Each output record of ``fix`` carries ``claims``, each
with a ``kind`` (object, count, attribute, relation) and a ``verdict`` (supported, contradicted,
unverifiable: the detector could not tell). Two shares, per kind and overall, in percent:

- **faithfulness** = supported / (supported + contradicted): unverifiable claims are left out, so the
  score measures what could be checked. This is the headline figure.
- **supported_share** = supported / all claims: unverifiable claims count as not supported, a lower
  bound that also falls when the verifier knows less.

Intervals resample answers (the claims of one answer stay together).

>>> records = [{"id": 1, "claims": [{"kind": "object", "verdict": "supported"},
...                                 {"kind": "count", "verdict": "contradicted"}]},
...            {"id": 2, "claims": [{"kind": "object", "verdict": "unverifiable"}]}]
>>> s = faithfulness_scores(records)
>>> s["faithfulness"], round(s["supported_share"], 1), s["object"], s["kinds"]["object"]["unverifiable"]
(50.0, 33.3, 100.0, 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from halluguard.metrics.runs import MetricRun, Run, occurrence_keys
from halluguard.records import CLAIM_KINDS, VERDICTS

__all__ = ["KINDS", "VERDICTS", "evaluate_run", "faithfulness_scores"]

KINDS = CLAIM_KINDS
RATES = ("faithfulness", "supported_share", *KINDS)


def _count(claims: Iterable[Any], line: int, errors: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts = {k: dict.fromkeys(VERDICTS, 0) for k in KINDS}
    for i, claim in enumerate(claims):
        if not isinstance(claim, dict):
            errors.append({"line": line, "reason": f"claim {i}: expected an object"})
            continue
        kind, verdict = claim.get("kind"), claim.get("verdict")
        if kind not in KINDS or verdict not in VERDICTS:
            errors.append(
                {
                    "line": line,
                    "reason": f"claim {i}: kind {kind!r} / verdict {verdict!r} not one of "
                    f"{'|'.join(KINDS)} / {'|'.join(VERDICTS)}",
                }
            )
            continue
        counts[kind][verdict] += 1
    return counts


def _parts(per_answer: list[dict[str, dict[str, int]]]) -> dict[str, tuple[list[float], list[float]]]:
    parts: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in RATES}
    for counts in per_answer:
        sup = sum(c["supported"] for c in counts.values())
        con = sum(c["contradicted"] for c in counts.values())
        unv = sum(c["unverifiable"] for c in counts.values())
        parts["faithfulness"][0].append(float(sup))
        parts["faithfulness"][1].append(float(sup + con))
        parts["supported_share"][0].append(float(sup))
        parts["supported_share"][1].append(float(sup + con + unv))
        for kind in KINDS:
            parts[kind][0].append(float(counts[kind]["supported"]))
            parts[kind][1].append(float(counts[kind]["supported"] + counts[kind]["contradicted"]))
    return parts


def _summary(per_answer: list[dict[str, dict[str, int]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (num, den) in _parts(per_answer).items():
        out[name] = 100.0 * sum(num) / sum(den) if sum(den) else float("nan")
    kinds: dict[str, dict[str, Any]] = {}
    for kind in (*KINDS, "all"):
        totals = dict.fromkeys(VERDICTS, 0)
        for counts in per_answer:
            for k in KINDS if kind == "all" else (kind,):
                for v in VERDICTS:
                    totals[v] += counts[k][v]
        n = sum(totals.values())
        share = totals["supported"] / n * 100.0 if n else float("nan")
        kinds[kind] = dict(totals, claims=n, supported_share=share)
    out["n"] = len(per_answer)
    out["claims"] = kinds["all"]["claims"]
    out["kinds"] = kinds
    return out


def faithfulness_scores(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Faithfulness of ``fix`` output records (those without ``claims`` are skipped)."""
    errors: list[dict[str, Any]] = []
    per_answer = [
        _count(r.get("claims") or [], line, errors)
        for line, r in enumerate(records, start=1)
        if isinstance(r, dict) and isinstance(r.get("claims"), list)
    ]
    return _summary(per_answer)


def evaluate_run(run: Run) -> MetricRun:
    """Score a run of ``fix`` output; a record without a ``claims`` list is an error for its line."""
    return finish(run.name, *score_records(run))


def score_records(run: Run) -> tuple[list[tuple[str, dict[str, dict[str, int]]]], list[dict[str, Any]]]:
    """The per-record half of :func:`evaluate_run`: ``(key, claim counts)`` per answer, and errors."""
    errors = list(run.errors)
    items = []
    for rec in run.records:
        claims = rec.record.get("claims")
        if not isinstance(claims, list):
            errors.append({"line": rec.line, "reason": "no 'claims' list (is this `halluguard fix` output?)"})
            continue
        counts = _count(claims, rec.line, errors)
        key = rec.record.get("id")
        if key is None:
            key = rec.record.get("image_id", rec.record.get("image", f"line {rec.line}"))
        items.append((str(key), counts))
    return items, errors


def finish(name: str, items: list[tuple[str, dict[str, dict[str, int]]]], errors: list[dict[str, Any]]) -> MetricRun:
    """The whole-run half of :func:`evaluate_run`."""
    per_answer = [counts for _, counts in items]
    return MetricRun(
        name=name,
        summary=_summary(per_answer),
        keys=occurrence_keys(key for key, _ in items),
        parts=_parts(per_answer),
        errors=sorted(errors, key=lambda e: e["line"]),
    )
