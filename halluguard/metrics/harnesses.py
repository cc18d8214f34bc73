"""What evaluation harnesses write, read as halluguard's records: lmms-eval, VLMEvalKit, RePOPE.

- **lmms-eval**, ``--log_samples`` (``<date>_samples_<task>.jsonl``, one line per question; written by
  ``lmms_eval/loggers/evaluation_tracker.py``): the answer is ``filtered_resps`` (a string, or a list
  holding it), the label ``target``; the POPE task's per-sample metric dicts (``pope_accuracy`` ...) carry
  the ``question_id``, else ``doc_id`` is the question's row. The task's category is in ``doc`` when the
  log kept it (older releases), else in the task name (``pope_adv``, ``pope_pop``, ``pope_random``).
- **lmms-eval's POPE data** (``lmms-lab/POPE``: ``question_id``, ``question``, ``answer``, ``category``) as
  question files: ``answer`` is the label, ``category`` the split (:func:`~halluguard.metrics.pope.load_questions`).
- **VLMEvalKit** prediction files (``{model}_{dataset}.xlsx``, ``.tsv`` or ``.json``, written by
  ``vlmeval/inference.py``): one row per question with ``index``, ``question``, ``answer`` (the label,
  "Yes"/"No"), ``prediction`` and ``category``; POPE rows name several splits at once
  ("adversarial,popular"), and count once in each, as VLMEvalKit's ``POPE_rating`` counts them.
- **RePOPE** (YanNeu/RePOPE) re-annotated POPE labels, ``coco_repope_{split}.json`` in POPE's format:
  pass them as ``--annotations``; answers to the questions RePOPE removed as ambiguous are left out
  and counted, not reported as errors.

Every reader returns records with ``question_id``, ``answer`` (the model's text), ``label`` and
``split`` where the file has them, so a harness's file scores without a separate question file.

>>> rows = [{"index": 7, "question": "Is there a dog?", "answer": "Yes", "prediction": "Yes, there is.",
...          "category": "adversarial,popular"}]
>>> [(r["question_id"], r["split"], r["label"]) for r in from_vlmevalkit(rows)]
[('7', 'adversarial', 'yes'), ('7', 'popular', 'yes')]
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

__all__ = ["answers_to_fix", "from_lmms_eval", "from_vlmevalkit", "is_lmms_eval_sample", "read_table",
           "task_split"]
#: the prediction tables ``fix`` and ``eval`` read besides JSON lines
TABLE_SUFFIXES = (".tsv", ".csv", ".xlsx")

#: lmms-eval's POPE task names and the POPE split each one holds
_TASK_SPLITS = {"adv": "adversarial", "adversarial": "adversarial", "pop": "popular", "popular": "popular",
                "random": "random"}


def is_lmms_eval_sample(record: Any) -> bool:
    """Whether a parsed line is one of lmms-eval's ``--log_samples`` lines."""
    return isinstance(record, dict) and "doc_id" in record and ("filtered_resps" in record or "resps" in record)


def task_split(path: str | Path) -> str | None:
    """The POPE split a log file's task name gives (``..._samples_pope_adv.jsonl`` -> adversarial)."""
    match = re.search(r"pope_([a-z]+)", Path(path).stem.lower())
    return _TASK_SPLITS.get(match.group(1)) if match else None


def _first(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return value


def from_lmms_eval(records: list[dict[str, Any]], split: str | None = None) -> list[dict[str, Any]]:
    """lmms-eval sample lines as records (``answer``: the filtered response; ``label``: the target)."""
    out = []
    for record in records:
        if not is_lmms_eval_sample(record):
            out.append(record)
            continue
        metric = next((v for v in record.values() if isinstance(v, dict) and "question_id" in v), {})
        doc = record.get("doc") if isinstance(record.get("doc"), dict) else {}
        response = _first(record.get("filtered_resps", record.get("resps")))
        converted = dict(record)
        converted.update(
            question_id=str(metric.get("question_id", doc.get("question_id", record["doc_id"]))),
            answer="" if response is None else str(response),
            label=str(metric.get("ground_truth", record.get("target", doc.get("answer", "")))).strip().lower(),
        )
        category = doc.get("category") or split
        if category:
            converted["split"] = str(category)
        if doc.get("question"):
            converted["question"] = doc["question"]
        out.append(converted)
    return out


def from_vlmevalkit(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """VLMEvalKit prediction rows as records, one per split a row names."""
    out = []
    for row in rows:
        base = dict(row)
        base.update(
            question_id=str(row.get("index", "")),
            answer="" if row.get("prediction") is None else str(row.get("prediction")),
            label=str(row.get("answer", "")).strip().lower(),
        )
        categories = [c.strip() for c in str(row.get("category") or "").split(",") if c.strip()]
        for category in categories or [None]:
            record = dict(base)
            if category:
                record["split"] = category
            out.append(record)
    return out


def answers_to_fix(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """VLMEvalKit prediction rows as ``fix`` input, one record per row (not per split): ``answer`` is the
    model's ``prediction``, the file's ``answer`` (the label) becomes ``label``, ``image_path`` the
    ``image``; every other column is carried through.

    >>> answers_to_fix([{"index": "7", "question": "Is there a dog?", "answer": "No",
    ...                  "prediction": "Yes, there is a dog.", "image_path": "a.jpg"}])[0]
    ... # doctest: +NORMALIZE_WHITESPACE
    {'index': '7', 'question': 'Is there a dog?', 'answer': 'Yes, there is a dog.', 'image_path': 'a.jpg',
     'id': '7', 'label': 'no', 'image': 'a.jpg'}
    """
    out = []
    for row in rows:
        record = {k: v for k, v in row.items() if k != "prediction"}
        record["answer"] = "" if row.get("prediction") is None else str(row["prediction"])
        record.setdefault("id", str(row.get("index", "")))
        if "answer" in row:
            record["label"] = str(row["answer"]).strip().lower()
        if row.get("image_path") and not row.get("image"):
            record["image"] = str(row["image_path"])
        out.append(record)
    return out


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a TSV/CSV file or of the first sheet of an XLSX workbook (no extra package needed)."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return _xlsx_rows(path)
    text = path.read_text(encoding="utf-8-sig")
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" or "\t" in text.split("\n", 1)[0] else "excel"
    return [dict(row) for row in csv.DictReader(io.StringIO(text), dialect=dialect)]


_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _xlsx_rows(path: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as book:
        names = book.namelist()
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in item.iter(f"{{{_NS['m']}}}t")) for item in root.findall("m:si", _NS)]
        sheet = sorted(n for n in names if n.startswith("xl/worksheets/sheet"))[0]
        root = ElementTree.fromstring(book.read(sheet))
    table: list[list[Any]] = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        cells: dict[int, Any] = {}
        for cell in row.findall("m:c", _NS):
            column = _column(cell.get("r", ""))
            kind, value = cell.get("t"), cell.find("m:v", _NS)
            if kind == "s" and value is not None:
                cells[column] = shared[int(value.text)]
            elif kind == "inlineStr":
                cells[column] = "".join(t.text or "" for t in cell.iter(f"{{{_NS['m']}}}t"))
            elif value is not None:
                text = value.text or ""
                cells[column] = int(float(text)) if re.fullmatch(r"-?\d+(\.0+)?", text) else text
        width = max(cells, default=-1) + 1
        table.append([cells.get(i) for i in range(width)])
    if not table:
        return []
    header = [str(h) for h in table[0]]
    return [dict(zip(header, row + [None] * (len(header) - len(row)))) for row in table[1:]]


def _column(reference: str) -> int:
    letters = re.match(r"[A-Z]+", reference)
    number = 0
    for letter in letters.group() if letters else "A":
        number = number * 26 + ord(letter) - 64
    return number - 1
