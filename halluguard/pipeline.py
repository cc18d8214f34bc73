"""The ``fix`` pipeline: one straight pipe from a JSONL of answers to a JSONL of corrections.

read line -> Answer -> (image checked) -> corrector.correct(chunk) -> write line, in input order.
A bad line or a bad image becomes an error record; the other records go on. With ``workers > 1``
chunks of raw lines go to worker processes (:mod:`halluguard.workers`) that run every stage and
send back finished output lines; the output is byte-identical to one process.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "in.jsonl").write_text('{"id": 1, "answer": "A dog."}\\n[1, 2]\\n')
>>> summary = fix(folder / "in.jsonl", folder / "out.jsonl", detector="none")
>>> summary.records, summary.written, summary.errors
(2, 1, 1)
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from halluguard.images import ImageRef
from halluguard.io import AtomicJsonlWriter, ErrorRecord, dumps, fingerprint, parse_line, read_lines
from halluguard.records import Answer, Correction, RecordError

DEFAULT_CHUNK = 256


class Corrector(Protocol):
    """Turns a chunk of answers into corrections; a ``RecordError`` in the list fails that record only."""

    def correct(self, answers: Sequence[Answer],
                images: Sequence[ImageRef | None]) -> list[Correction | RecordError]:
        ...


class PassThrough:
    """The corrector that changes nothing: plumbing checks and a baseline for speed."""

    def correct(self, answers: Sequence[Answer],
                images: Sequence[ImageRef | None]) -> list[Correction | RecordError]:
        return [Correction(corrected=a.text) for a in answers]


@dataclass
class Summary:
    """What a ``fix`` run did. ``records`` = ``written`` + ``errors``, always."""

    records: int
    written: int
    corrected: int
    errors: int
    seconds: float
    output: str
    errors_file: str | None
    resumed_from_line: int = 0

    @classmethod
    def of(cls, writers: Sequence[AtomicJsonlWriter], started: float, output: Path) -> "Summary":
        """The summary of a run that wrote through ``writers`` (one per output file)."""
        counts = {k: sum(w.counts[k] for w in writers) for k in ("written", "errors", "corrected")}
        errors = [str(w.errors_path) for w in writers if w.counts["errors"]]
        return cls(records=counts["written"] + counts["errors"], written=counts["written"],
                   corrected=counts["corrected"], errors=counts["errors"],
                   seconds=time.perf_counter() - started,
                   output=str(output), errors_file=", ".join(errors) or None,
                   resumed_from_line=max((w.resumed_from for w in writers), default=0))

    def line(self) -> str:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        errors = f" -> {self.errors_file}" if self.errors else ""
        return (
            f"{self.records} records, {self.corrected} corrected, {self.errors} errors{errors}, "
            f"{self.seconds:.1f} s ({rate:,.0f} records/s) -> {self.output}"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ImageStore:
    """Resolves and validates each record's image once per path; keeps recent decoded images only."""

    def __init__(self, keep_decoded: int = 64):
        self._refs: OrderedDict[tuple[Path | None, str | None], ImageRef] = OrderedDict()
        self._failures: dict[Path, RecordError] = {}
        self.keep_decoded = keep_decoded

    def get(self, answer: Answer) -> ImageRef | None:
        if answer.image is None and answer.image_id is None:
            return None
        key = (answer.image, answer.image_key)
        ref = self._refs.get(key)
        if ref is None:
            if answer.image is not None and answer.image in self._failures:
                raise self._failures[answer.image]
            ref = ImageRef(path=answer.image, key=answer.image_key)
            if ref.path is not None:
                try:
                    ref.validate()
                except RecordError as exc:
                    self._failures[ref.path] = exc
                    raise
            self._refs[key] = ref
            if len(self._refs) > self.keep_decoded:
                _, old = self._refs.popitem(last=False)
                old.release()
        else:
            self._refs.move_to_end(key)
        return ref


def fix(
    input: str | Path,
    output: str | Path,
    *,
    detector: str | Any = "none",
    corrector: Corrector | None = None,
    images: str | Path | None = None,
    text_field: str | None = None,
    resume: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    options: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> Summary:
    """Correct every answer in ``input`` and write ``output`` (+ ``output.errors.jsonl``).

    ``detector`` is a spec understood by :func:`halluguard.detectors.load_detector` (``"none"``,
    ``"person"``, ``"yolo11n.pt"``, ``"annotations:FILE"``, ...) or a detector object;
    ``corrector`` overrides the whole correction stage. ``options`` (anything that changes the
    output) is stored in the resume checkpoint so a resume with other options is refused.
    ``on_progress(bytes_read, records_done)`` is called after each chunk. ``workers``: processes
    that run the corrector (see :func:`resolve_workers`; ``None`` picks a default).
    """
    input, output = Path(input), Path(output)
    if not input.is_file():
        raise FileNotFoundError(f"input not found: {input}")
    output.parent.mkdir(parents=True, exist_ok=True)
    images_dir = Path(images) if images is not None else None
    if corrector is None:
        corrector = build_corrector(detector, **(options or {}))
    started = time.perf_counter()
    settings = run_options(detector, options, text_field, images_dir, corrector=corrector)
    writer = AtomicJsonlWriter(output, fingerprint(input, settings), resume=resume)
    work = ChunkWork(corrector, input.parent, str(input), text_field, images_dir)
    n = resolve_workers(workers, corrector)
    try:
        last_line = writer.lines_done
        total_bytes, bytes_read = input.stat().st_size, _prefix_bytes(input, writer.lines_done)
        chunks = _chunks(read_lines(input, skip_until=writer.lines_done), chunk_size)
        first = next(chunks, None)
        ahead = next(chunks, None) if first is not None and len(first) == chunk_size else None
        chunks = itertools.chain([c for c in (first, ahead) if c is not None], chunks)
        n = n if ahead is not None else 1  # a single chunk: no worker processes
        with contextlib.closing(_run(work, chunks, n)) as results:  # closing: workers stop on any error
            for chunk, lines in results:
                for line, error, corrected in lines:
                    writer.write_line(line, error=error, corrected=corrected)
                bytes_read += sum(len(raw) + 1 for _, raw in chunk)
                last_line = chunk[-1][0]
                if len(chunk) == chunk_size:  # a full chunk: checkpoint (the last one is committed below)
                    writer.checkpoint(last_line)
                    if on_progress:
                        done = writer.counts["written"] + writer.counts["errors"]
                        on_progress(min(bytes_read, total_bytes), done)
        writer.lines_done = last_line
        writer.commit()
        if on_progress:  # the whole file is read (blank lines and a resumed prefix included)
            on_progress(total_bytes, writer.counts["written"] + writer.counts["errors"])
    finally:
        writer.close()
    return Summary.of([writer], started, output)


#: what a chunk of lines becomes: ``(output line, goes to the errors file, corrected)`` per line
Outcome = tuple[bytes, bool, bool]
Chunk = list[tuple[int, bytes]]


@dataclass
class ChunkWork:
    """Parse, correct and serialise one chunk of raw lines (in this process or in a worker)."""

    corrector: Corrector
    base_dir: Path
    source: str
    text_field: str | None = None
    images_dir: Path | None = None
    store: ImageStore = field(default_factory=ImageStore)

    def __call__(self, chunk: Chunk) -> list[Outcome]:
        parsed = [(number, raw, parse_line(number, raw, self.base_dir, text_field=self.text_field,
                                           images_dir=self.images_dir, source=self.source))
                  for number, raw in chunk]
        outcomes = []
        for outcome in _process(parsed, self.corrector, self.store, self.source):
            if isinstance(outcome, ErrorRecord):
                outcomes.append((dumps(outcome.to_json()), True, False))
            else:
                outcomes.append((dumps(outcome), False, bool(outcome.get("edits"))))
        return outcomes


def resolve_workers(workers: int | None, corrector: Corrector) -> int:
    """How many processes run the corrector: ``workers`` when given (>= 1), else one per usable core
    (at most 8) for the rule-based corrector with an in-memory detector (annotations, none), and 1
    for the rest (a model detector would be loaded once per worker) and for the pass-through."""
    from halluguard.workers import default_workers

    if workers is not None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        return workers
    return default_workers() if parallel_by_default(corrector) else 1


def parallel_by_default(corrector: Corrector) -> bool:
    """Whether the corrector is worth spreading over processes without being asked to."""
    backend = getattr(getattr(corrector, "detector", None), "detector", None)
    options = getattr(corrector, "options", None)
    rewriter = getattr(options, "rewriter", None)  # an LLM rewriter is a model too
    return type(backend).__name__ in _IN_MEMORY_DETECTORS and options is not None and rewriter is None


_IN_MEMORY_DETECTORS = frozenset({"AnnotationDetector", "NoDetector"})


def prepare_text_worker() -> None:
    """Import spaCy in a worker that runs only the text stages, without thinc importing torch.

    thinc imports torch whenever it is installed, only to offer it as a backend; the tagger and
    parser of the ``en_core_web_*`` pipelines never use it, and it costs seconds and about 550 MB
    per process. Only worker processes do this (thinc then works without torch there); a later
    ``import torch`` in the worker still works.
    """
    if any(name in sys.modules for name in ("thinc", "torch", "spacy")):
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        import spacy  # noqa: F401
    except ImportError:
        pass  # the corrector says what to install when it needs spaCy
    finally:
        del sys.modules["torch"]


def _chunks(lines: Iterable[tuple[int, bytes]], size: int) -> Iterator[Chunk]:
    iterator = iter(lines)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _run(work: ChunkWork, chunks: Iterator[Chunk], workers: int) -> Iterator[tuple[Chunk, list[Outcome]]]:
    """``(chunk, outcomes)`` in input order, from this process or from ``workers`` processes."""
    if workers <= 1:
        for chunk in chunks:
            yield chunk, work(chunk)
        return
    from halluguard.workers import OrderedPool

    sent: deque[Chunk] = deque()  # the parent needs each chunk's line numbers and sizes back

    def keep(items: Iterator[Chunk]) -> Iterator[Chunk]:
        for chunk in items:
            sent.append(chunk)
            yield chunk

    light = prepare_text_worker if parallel_by_default(work.corrector) else None
    with OrderedPool(work, workers, initializer=light) as pool:
        for outcomes in pool.map(keep(chunks)):
            yield sent.popleft(), outcomes


def _prefix_bytes(path: Path, lines: int) -> int:
    """Bytes of the first ``lines`` lines of ``path`` (what a resumed run has already read)."""
    if not lines:
        return 0
    with open(path, "rb") as handle:
        return sum(len(raw) for _, raw in zip(range(lines), handle))


def run_options(detector: Any, options: dict[str, Any] | None, text_field: str | None, images: Any,
                corrector: Any = None) -> dict[str, Any]:
    """Everything that changes a run's output: kept in its checkpoint, so --resume refuses other options.

    That includes the content of the vocabulary (the corrector's, else the one ``options`` name).
    """
    settings = {"text_field": text_field, "images": str(images) if images else None,
                "detector": detector if isinstance(detector, str) else type(detector).__name__,
                **(options or {})}
    vocabulary = getattr(corrector, "vocabulary", None)
    if vocabulary is None and corrector is None and not checks_nothing(detector, options or {}):
        from halluguard.correctors.vocabulary import Vocabulary

        path = (options or {}).get("vocabulary")
        vocabulary = Vocabulary.from_file(path) if path else Vocabulary.default()
    if hasattr(vocabulary, "digest"):
        settings["vocabulary_sha1"] = vocabulary.digest()
    return settings


def _process(chunk, corrector: Corrector, store: ImageStore,
             source: str) -> list[dict[str, Any] | ErrorRecord]:
    """Correct the good answers of a parsed chunk: each line's output record or error, in input order."""
    outcomes: dict[int, dict[str, Any] | ErrorRecord] = {}
    raws = {number: raw for number, raw, _ in chunk}
    answers: list[Answer] = []
    refs: list[ImageRef | None] = []
    for number, _, parsed in chunk:
        if isinstance(parsed, ErrorRecord):
            outcomes[number] = parsed
            continue
        try:
            refs.append(store.get(parsed))
            answers.append(parsed)
        except RecordError as exc:
            outcomes[number] = record_error(parsed, exc, raws[number], source)
    results = _correct_isolated(corrector, answers, refs)
    for answer, result in zip(answers, results):
        if isinstance(result, RecordError):
            outcomes[answer.line] = record_error(answer, result, raws[answer.line], source)
        else:
            outcomes[answer.line] = {**answer.record, **result.to_json()}
    return [outcomes[number] for number, _, _ in chunk]


def _correct_isolated(corrector: Corrector, answers: list[Answer], refs: list[ImageRef | None]):
    """Run the corrector on the chunk; if it fails as a whole, retry record by record."""
    if not answers:
        return []
    try:
        return corrector.correct(answers, refs)
    except RecordError:
        pass
    results: list[Correction | RecordError] = []
    for answer, ref in zip(answers, refs):
        try:
            results.extend(corrector.correct([answer], [ref]))
        except RecordError as exc:
            results.append(exc)
    return results


def record_error(answer: Answer, exc: RecordError, raw: bytes, source: str) -> ErrorRecord:
    """The error line of an answer that failed (its raw line and source file kept)."""
    return ErrorRecord(answer.line, answer.id, exc.reason, exc.field, raw.decode("utf-8"), source)


def build_corrector(detector: str | Any = "none", **options: Any) -> Corrector:
    """The corrector for a detector spec and :class:`~halluguard.correctors.woodpecker.CorrectOptions`.

    ``detector="none"`` with no option that acts without a detector (``mode="lure"``,
    ``unverifiable="hedge"|"remove"``) checks nothing, so answers pass through unchanged and
    no text is parsed.
    """
    if checks_nothing(detector, options):
        return PassThrough()
    from halluguard.correctors.woodpecker import Woodpecker

    return Woodpecker.from_spec(detector, **options)


def checks_nothing(detector: str | Any, options: dict[str, Any]) -> bool:
    """Whether this detector and these options leave every answer as it is (see :func:`build_corrector`)."""
    acts_alone = (options.get("mode", "woodpecker") != "woodpecker"
                  or options.get("unverifiable", "keep") != "keep")
    return detector in (None, "none") and not acts_alone
