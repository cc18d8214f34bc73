"""Claim-level faithfulness of `halluguard fix` output, by hand."""

from __future__ import annotations

import pytest

from halluguard.metrics.faithfulness import evaluate_run, faithfulness_scores
from halluguard.metrics.runs import Run


def _claim(kind, verdict, text="x"):
    return {
        "text": text,
        "start": 0,
        "end": 1,
        "kind": kind,
        "label": "dog",
        "verdict": verdict,
        "evidence": {},
    }


RECORDS = [
    {
        "id": "a",
        "answer": "...",
        "claims": [
            _claim("object", "supported"),
            _claim("object", "contradicted"),
            _claim("count", "supported"),
            _claim("attribute", "unverifiable"),
        ],
    },
    {
        "id": "b",
        "answer": "...",
        "claims": [
            _claim("object", "supported"),
            _claim("relation", "contradicted"),
            _claim("relation", "unverifiable"),
        ],
    },
    {"id": "c", "answer": "...", "claims": []},
]


def test_shares_per_kind_and_overall():
    s = faithfulness_scores(RECORDS)
    # verifiable: 3 supported, 2 contradicted; all: 3 of 7
    assert s["faithfulness"] == pytest.approx(60.0)
    assert s["supported_share"] == pytest.approx(100 * 3 / 7)
    assert s["object"] == pytest.approx(100 * 2 / 3)
    assert s["count"] == 100.0
    assert s["relation"] == 0.0
    assert s["attribute"] != s["attribute"]  # only unverifiable: undefined
    assert s["kinds"]["attribute"] == {
        "supported": 0,
        "contradicted": 0,
        "unverifiable": 1,
        "claims": 1,
        "supported_share": 0.0,
    }
    assert s["n"] == 3 and s["claims"] == 7


def test_bad_claims_and_records_are_reported():
    run = Run.from_records(
        RECORDS
        + [{"id": "d", "answer": "..."}, {"id": "e", "claims": [{"kind": "colour", "verdict": "supported"}]}],
        require_text=False,
    )
    result = evaluate_run(run)
    assert result.summary["n"] == 4
    assert [e["line"] for e in result.errors] == [4, 5]
    assert "claims" in result.errors[0]["reason"] and "colour" in result.errors[1]["reason"]
