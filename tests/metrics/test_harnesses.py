"""Harness files scored as they are: lmms-eval logs and data, VLMEvalKit predictions (TSV, XLSX, JSON), RePOPE."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from halluguard.metrics import evaluate
from halluguard.metrics.harnesses import read_table
from halluguard.metrics.runs import read_run

FILES = Path(__file__).parent / "harness_files"
LMMS_LOG = FILES / "2026-11-30T10-00-00_samples_pope_adv.jsonl"


def test_lmms_eval_samples_carry_answers_labels_and_their_split():
    run = read_run(LMMS_LOG)
    assert [r.text for r in run.records] == ["Yes", "Yes, there is a dog.", "No", "No, I do not see one."]
    assert [(r.record["question_id"], r.record["label"], r.record["split"]) for r in run.records][:2] == [
        ("1", "yes", "adversarial"),
        ("2", "no", "adversarial"),
    ]
    # scored without a question file: POPE's evaluate.py parsing (first sentence; no/not -> no)
    row = evaluate(LMMS_LOG, metric="pope").runs[0]
    assert row["n"] == 4 and row["accuracy"] == 50.0 and row["tp"] == 1 and row["fp"] == 1


def test_lmms_eval_pope_rows_are_question_files():
    report = evaluate(LMMS_LOG, FILES / "pope_lmms_eval_rows.jsonl", metric="pope")
    assert report.runs[0]["n"] == 4 and report.runs[0]["accuracy"] == 50.0


def test_vlmevalkit_tsv_counts_a_row_once_per_split():
    run = read_run(FILES / "llava_POPE.tsv")
    assert len(run.records) == 6  # two rows name two splits each
    report = evaluate(FILES / "llava_POPE.tsv", metric="pope")
    row = report.runs[0]
    assert row["n"] == 6 and set(row["splits"]) == {"adversarial", "popular", "random"}
    assert row["splits"]["random"]["n"] == 2


def _xlsx(path: Path, rows: list[list]) -> Path:
    """A workbook as spreadsheet programs write it: shared strings, numbers as values."""
    strings: list[str] = []
    cells = []
    for r, row in enumerate(rows, start=1):
        out = []
        for c, value in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(value, (int, float)):
                out.append(f'<c r="{ref}"><v>{value}</v></c>')
            else:
                strings.append(str(value))
                out.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
        cells.append(f'<row r="{r}">{"".join(out)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("xl/worksheets/sheet1.xml", f'<worksheet {ns}><sheetData>{"".join(cells)}</sheetData></worksheet>')
        shared = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
        book.writestr("xl/sharedStrings.xml", f"<sst {ns}>{shared}</sst>")
    return path


def test_vlmevalkit_xlsx_and_json_read_as_the_tsv(tmp_path):
    rows = read_table(FILES / "llava_POPE.tsv")
    header = list(rows[0])
    table = [header] + [[int(r["index"]) if k == "index" else r[k] for k in header] for r in rows]
    xlsx = _xlsx(tmp_path / "llava_POPE.xlsx", table)
    assert read_table(xlsx) == [dict(r, index=int(r["index"])) for r in rows]
    (tmp_path / "llava_POPE.json").write_text(json.dumps([dict(r, index=int(r["index"])) for r in rows]))
    expected = evaluate(FILES / "llava_POPE.tsv", metric="pope").runs[0]
    for path in (xlsx, tmp_path / "llava_POPE.json"):
        assert evaluate(path, metric="pope").runs[0]["accuracy"] == expected["accuracy"]


def test_repope_labels_as_annotations_leave_out_what_they_removed():
    report = evaluate(LMMS_LOG, FILES / "coco_repope_adversarial.json", metric="pope")
    row = report.runs[0]
    assert row["n"] == 3 and row["accuracy"] == pytest.approx(100 * 2 / 3)  # question 2 relabelled "yes"
    assert [e["reason"] for e in row["errors"]] == ["question '3' (adversarial) was removed by RePOPE as ambiguous: not scored"]


def test_pope_without_labels_or_annotations_says_what_to_pass(tmp_path):
    from halluguard.metrics.runs import UsageError

    (tmp_path / "answers.jsonl").write_text('{"question_id": 1, "answer": "yes"}\n')
    with pytest.raises(UsageError, match="carries its labels"):
        evaluate(tmp_path / "answers.jsonl", metric="pope")
