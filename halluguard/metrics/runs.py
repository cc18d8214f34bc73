"""Reading runs (model answers) for evaluation: one bad line never sinks the whole file.

A run is a JSONL file (one JSON object per line), a JSON array of objects (AMBER's response format), or
what an evaluation harness writes (:mod:`~halluguard.metrics.harnesses`: lmms-eval's ``--log_samples``
lines, VLMEvalKit's TSV/XLSX/JSON predictions). The answer text is read from ``text_field`` when given,
else from the first of ``answer``, ``caption``, ``text``, ``response`` that a record has. Lines that are
not JSON objects, or have no usable text, are kept out and reported with their line numbers.

>>> run = Run.from_records([{"image_id": 1, "caption": "A dog."}, {"image_id": 2}], name="demo")
>>> [r.text for r in run.records], run.errors
(['A dog.'], [{'line': 2, 'reason': "no text field (looked for 'answer', 'caption', 'text', 'response')"}])
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluguard.io import TEXT_FIELDS


class UsageError(ValueError):
    """A problem with what the user asked for (a missing file, an unknown metric): exit code 2."""


@dataclass
class RunRecord:
    """One usable line of a run: its 1-based ``line`` number, the parsed ``record`` and its ``text``."""

    line: int
    record: dict[str, Any]
    text: str


@dataclass
class Run:
    """A named run: usable ``records`` plus ``errors`` (``{"line": n, "reason": ...}``) for the rest."""

    name: str
    records: list[RunRecord] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, line: int, reason: str) -> None:
        self.errors.append({"line": line, "reason": reason})

    @classmethod
    def from_records(
        cls,
        records: Iterable[Any],
        name: str = "run",
        text_field: str | None = None,
        first_line: int = 1,
        require_text: bool = True,
        split: str | None = None,
    ) -> Run:
        """Build a run from already parsed objects (line numbers count from ``first_line``).

        With ``require_text=False`` a record without a text field is kept with empty text. Harness
        records (lmms-eval samples, VLMEvalKit rows) are read as such; ``split`` is the POPE split an
        lmms-eval log's task name gives.
        """
        from halluguard.metrics import harnesses

        run = cls(name=name)
        fields = (text_field,) if text_field else TEXT_FIELDS
        for line, record in enumerate(records, start=first_line):
            if not isinstance(record, dict):
                run.error(line, f"expected a JSON object, got {type(record).__name__}")
                continue
            if harnesses.is_lmms_eval_sample(record):
                record = harnesses.from_lmms_eval([record], split)[0]
            elif "prediction" in record and "index" in record:  # VLMEvalKit: "answer" is the label
                for one in harnesses.from_vlmevalkit([record]):
                    run.records.append(RunRecord(line, one, one["answer"]))
                continue
            name_found = next((f for f in fields if f in record), None)
            if name_found is None and not require_text:
                run.records.append(RunRecord(line, record, ""))
                continue
            if name_found is None:
                wanted = ", ".join(repr(f) for f in fields)
                run.error(line, f"no text field (looked for {wanted})")
                continue
            text = record[name_found]
            if text is None:
                text = ""
            if not isinstance(text, str):
                run.error(line, f"field {name_found!r} should be a string, got {type(text).__name__}")
                continue
            run.records.append(RunRecord(line, record, text))
        return run


def read_run(
    path: str | Path, text_field: str | None = None, name: str | None = None, require_text: bool = True
) -> Run:
    """Read a JSONL file (or a JSON array) into a :class:`Run`; raise :class:`UsageError` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"run file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read run file {path}: {exc}") from exc
    name = name or path.name
    from halluguard.metrics import harnesses

    split = harnesses.task_split(path)
    if path.suffix.lower() in harnesses.TABLE_SUFFIXES:
        try:
            rows = harnesses.read_table(path)
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise UsageError(f"{path}: not a readable prediction table: {exc}") from exc
        return Run.from_records(rows, name=name, text_field=text_field, first_line=2, require_text=require_text)
    if data.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"["):
        try:
            items = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path}: starts with '[' but is not a JSON array: {exc}") from exc
        return Run.from_records(items, name=name, text_field=text_field, require_text=require_text, split=split)
    lines = enumerate(data.splitlines(), start=1)
    return run_from_lines(lines, name=name, text_field=text_field, require_text=require_text, split=split)


def run_from_lines(
    lines: Iterable[tuple[int, bytes]],
    name: str = "run",
    text_field: str | None = None,
    require_text: bool = True,
    split: str | None = None,
) -> Run:
    """A :class:`Run` from numbered raw JSONL lines (blank lines skipped; a bad line is an error).

    The same function reads a whole file locally and one batch of lines on a cluster.
    """
    run = Run(name=name)
    parsed: list[tuple[int, Any]] = []
    for number, raw in lines:
        if not raw.strip():
            continue
        try:
            parsed.append((number, json.loads(raw.decode("utf-8-sig"))))
        except UnicodeDecodeError as exc:
            run.error(number, f"not valid UTF-8 (byte {exc.start}): re-encode the file as UTF-8")
        except json.JSONDecodeError as exc:
            run.error(number, f"not valid JSON: {exc.msg} (column {exc.colno})")
    for number, record in parsed:
        one = Run.from_records(
            [record], name=name, text_field=text_field, first_line=number, require_text=require_text, split=split
        )
        run.records.extend(one.records)
        run.errors.extend(one.errors)
    run.errors.sort(key=lambda e: e["line"])
    return run


_NUMERIC = re.compile(r"^(?:COCO_[A-Za-z]+\d*_)?(\d+)(?:\.[A-Za-z]+)?$")


def image_key(value: Any) -> str | None:
    """Normalise an image id or file name to a lookup key.

    COCO ids and file names meet: ``139``, ``"139"``, ``"000000000139"`` and
    ``"COCO_val2014_000000000139.jpg"`` all give ``"139"``; other names are kept as they are
    (without their folder).

    >>> image_key(139), image_key("COCO_val2014_000000000139.jpg"), image_key("cat.png")
    ('139', '139', 'cat.png')
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    text = str(value).strip()
    name = text.replace("\\", "/").rsplit("/", 1)[-1]
    m = _NUMERIC.match(name)
    if m:
        return str(int(m.group(1)))
    return name or None


def record_image_key(record: dict[str, Any]) -> str | None:
    """The image key of a run record: ``image_id`` first, else ``image``."""
    for name in ("image_id", "image"):
        if record.get(name) is not None:
            return image_key(record[name])
    return None


def load_json_or_jsonl(path: str | Path) -> Any:
    """A JSON document, or a list of objects from JSONL (CRLF, BOM and blank lines tolerated)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"annotation file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read annotation file {path}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
    return items


@dataclass
class MetricRun:
    """One run scored by one metric, ready for statistics and reporting.

    ``summary`` is the JSON-ready result (rates in percent). ``keys`` name the scored items (for
    pairing two runs) and ``parts`` maps each rate to per-item ``(numerators, denominators)`` lists,
    aligned with ``keys`` (or with ``part_keys[rate]`` for a rate over other items), from which
    intervals and paired tests are computed. ``groups`` holds sub-results (POPE's splits).
    """

    name: str
    summary: dict[str, Any]
    keys: list[str] = field(default_factory=list)
    parts: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, MetricRun] = field(default_factory=dict)
    part_keys: dict[str, list[str]] = field(default_factory=dict)

    def keys_of(self, rate: str) -> list[str]:
        """The item keys that ``parts[rate]`` is aligned with."""
        return self.part_keys.get(rate, self.keys)


def occurrence_keys(keys: Iterable[str]) -> list[str]:
    """Make keys unique by numbering repeats: ``["1", "1", "2"] -> ["1", "1#2", "2"]``.

    >>> occurrence_keys(["1", "1", "2"])
    ['1', '1#2', '2']
    """
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        out.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return out
