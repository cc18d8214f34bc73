"""Streaming, loss-free JSONL: read records one line at a time, write them atomically, resume.

Promises (each tested):

- memory stays flat: lines are read and written one chunk at a time;
- output goes to a temporary file next to ``OUT`` and is renamed onto it when the run completes;
- every non-blank input line ends up either in ``OUT`` or in ``OUT.errors.jsonl`` (with its line
  number, id and reason), in input order;
- an interrupted run (even ``kill -9``) resumes from its last checkpoint and produces output
  byte-identical to an uninterrupted run.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "in.jsonl").write_text('{"answer": "a dog"}\\n{oops\\n')
>>> parsed = [parse_line(n, raw, folder) for n, raw in read_lines(folder / "in.jsonl")]
>>> parsed[0].text, type(parsed[1]).__name__
('a dog', 'ErrorRecord')
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from halluguard.records import Answer, RecordError

#: where an answer's text is looked for, in order, when no field is named (by ``fix`` and by ``eval``)
TEXT_FIELDS = ("answer", "caption", "text", "response")
CHECKPOINT_VERSION = 1


@dataclass
class ErrorRecord:
    """A record that could not be processed: what goes to ``OUT.errors.jsonl``."""

    line: int
    id: Any
    reason: str
    field: str | None = None
    input: str | None = None  # the raw line, so nothing is lost
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "id"}


def read_lines(path: Path, skip_until: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_bytes)`` for each non-blank line, 1-based, line ends stripped.

    Lines numbered ``<= skip_until`` are skipped (used by resume). Blank lines are not records.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number <= skip_until:
                continue
            raw = raw.rstrip(b"\r\n")
            if raw.strip():
                yield number, raw


def _record_id(record: dict[str, Any]) -> Any:
    for key in ("id", "question_id", "image_id", "image"):
        if key in record:
            return record[key]
    return None


def parse_line(
    number: int,
    raw: bytes,
    base_dir: Path,
    *,
    text_field: str | None = None,
    images_dir: Path | None = None,
    source: str | None = None,
) -> Answer | ErrorRecord:
    """Turn one raw line into an :class:`Answer`, or an :class:`ErrorRecord` saying what is wrong.

    ``text_field=None`` means ``answer``, falling back to ``caption`` then ``text``. Image paths
    are resolved against ``images_dir`` when given, else against ``base_dir`` (the JSONL's folder).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = raw.decode("utf-8", errors="backslashreplace")
        return ErrorRecord(number, None, f"invalid UTF-8 at byte {exc.start}: re-encode the file as UTF-8",
                           None, shown, source)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return ErrorRecord(number, None, f"malformed JSON ({exc.msg} at column {exc.colno})", None, text, source)
    if not isinstance(record, dict):
        return ErrorRecord(number, None, f"expected a JSON object, got {type(record).__name__}", None, text, source)
    try:
        return answer_from_record(record, number, base_dir, text_field=text_field, images_dir=images_dir)
    except RecordError as exc:
        return ErrorRecord(number, _record_id(record), exc.reason, exc.field, text, source)


def answer_from_record(
    record: dict[str, Any],
    number: int,
    base_dir: Path,
    *,
    text_field: str | None = None,
    images_dir: Path | None = None,
) -> Answer:
    """Validate a parsed record and build its :class:`Answer`; raise :class:`RecordError` if unusable."""
    if text_field is not None:
        candidates: tuple[str, ...] = (text_field,)
    else:
        candidates = TEXT_FIELDS
    field = next((name for name in candidates if name in record), None)
    if field is None:
        wanted = " or ".join(repr(c) for c in candidates)
        raise RecordError(f"no text field: expected {wanted} (choose another with --text-field)", candidates[0])
    text = record[field]
    if not isinstance(text, str):
        raise RecordError(f"field {field!r} must be a string, got {type(text).__name__}", field)
    image = record.get("image")
    image_path: Path | None = None
    if image is not None:
        if not isinstance(image, str) or not image:
            raise RecordError("field 'image' must be a non-empty path string", "image")
        image_path = Path(image)
        if not image_path.is_absolute():
            image_path = (images_dir or base_dir) / image_path
    question = record.get("question", record.get("prompt"))
    logprobs = record.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, list):
        raise RecordError("field 'logprobs' must be a list of per-token log-probabilities", "logprobs")
    return Answer(
        text=text,
        record=record,
        line=number,
        id=_record_id(record),
        image=image_path,
        image_id=record.get("image_id"),
        question=question if isinstance(question, str) else None,
        logprobs=logprobs,
    )


def dumps(record: dict[str, Any]) -> bytes:
    """The one serialisation used for every output line (deterministic, UTF-8, one line)."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def fingerprint(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """What must not change between an interrupted run and its resume."""
    stat = path.stat()
    with open(path, "rb") as handle:
        head = hashlib.sha1(handle.read(1 << 16)).hexdigest()
    return {"input": str(path.resolve()), "size": stat.st_size, "head_sha1": head, "options": options}


class AtomicJsonlWriter:
    """Write ``OUT`` and ``OUT.errors.jsonl`` through temporary files, checkpointing for resume.

    Temporary files live next to ``OUT`` (same file system, so the final rename is atomic):
    ``.OUT.partial``, ``.OUT.errors.partial`` and the checkpoint ``.OUT.checkpoint.json``.
    ``checkpoint(line)`` records that every input line up to ``line`` is fully written.
    """

    def __init__(self, output: Path, fingerprint: dict[str, Any], resume: bool = False):
        self.output = output
        self.errors_path = errors_path_for(output)
        folder, name = output.parent, output.name
        self._partial = folder / f".{name}.partial"
        self._errors_partial = folder / f".{name}.errors.partial"
        self._checkpoint = folder / f".{name}.checkpoint.json"
        self.fingerprint = fingerprint
        self.lines_done = 0
        self.resumed_from = 0
        self.counts = {"written": 0, "errors": 0, "corrected": 0}
        state = self._load_checkpoint() if resume else None
        if state is not None:
            self._out = _open_truncated(self._partial, state["out_bytes"])
            self._err = _open_truncated(self._errors_partial, state["err_bytes"])
            self.lines_done = self.resumed_from = state["lines_done"]
            self.counts = state["counts"]
        else:
            self._out = open(self._partial, "wb")
            self._err = open(self._errors_partial, "wb")

    def _load_checkpoint(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self._checkpoint.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if state.get("version") != CHECKPOINT_VERSION or state.get("fingerprint") != self.fingerprint:
            raise ResumeMismatch(
                f"cannot resume {self.output}: the input file or the options changed since the interrupted "
                "run; run again without --resume to start over"
            )
        if not (self._partial.exists() and self._errors_partial.exists()):
            return None
        return state

    def write(self, record: dict[str, Any], corrected: bool = False) -> None:
        self.write_line(dumps(record), corrected=corrected)

    def write_error(self, error: ErrorRecord) -> None:
        self.write_line(dumps(error.to_json()), error=True)

    def write_line(self, line: bytes, *, error: bool = False, corrected: bool = False) -> None:
        """Write one line already serialised with :func:`dumps` (to the errors file when ``error``)."""
        if error:
            self._err.write(line)
            self.counts["errors"] += 1
        else:
            self._out.write(line)
            self.counts["written"] += 1
            self.counts["corrected"] += int(corrected)

    def checkpoint(self, lines_done: int) -> None:
        """Make everything written so far durable and remember how far the input was consumed."""
        for handle in (self._out, self._err):
            handle.flush()
            os.fsync(handle.fileno())
        self.lines_done = lines_done
        state = {
            "version": CHECKPOINT_VERSION,
            "fingerprint": self.fingerprint,
            "lines_done": lines_done,
            "out_bytes": self._out.tell(),
            "err_bytes": self._err.tell(),
            "counts": self.counts,
        }
        tmp = self._checkpoint.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._checkpoint)

    def commit(self) -> None:
        """Rename the temporary files onto their final names (the errors file only if not empty)."""
        self.checkpoint(self.lines_done)
        self._out.close()
        self._err.close()
        os.replace(self._partial, self.output)
        if self.counts["errors"]:
            os.replace(self._errors_partial, self.errors_path)
        else:
            self._errors_partial.unlink()
            self.errors_path.unlink(missing_ok=True)
        self._checkpoint.unlink(missing_ok=True)

    def close(self) -> None:
        """Close without committing (an interrupted run keeps its checkpoint for --resume)."""
        for handle in (self._out, self._err):
            if not handle.closed:
                handle.close()


class ResumeMismatch(Exception):
    """--resume was asked for a run whose input or options differ."""


def errors_path_for(output: Path) -> Path:
    """``answers.fixed.jsonl`` -> ``answers.fixed.errors.jsonl``."""
    name = output.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    return output.with_name(stem + ".errors.jsonl")


def _open_truncated(path: Path, size: int) -> BinaryIO:
    handle = open(path, "r+b")
    handle.truncate(size)
    handle.seek(size)
    return handle
