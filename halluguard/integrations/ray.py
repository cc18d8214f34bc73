"""``halluguard fix`` on Ray Data: the same stages, spread over a cluster, detector on GPU actors.

    import ray
    from halluguard.integrations.ray import fix_dataset, read_answers
    ray.init()
    fixed = fix_dataset(read_answers("answers/"), detector="yolo11n.pt", num_gpus=1, concurrency=4)

The flow (each stage is the very method the local pipeline calls, see
:class:`~halluguard.correctors.woodpecker.Woodpecker`):

1. ``read_answers``: one row per input line, ``{source, line, raw}`` (blank lines are not records);
2. in CPU actors (``map_batches``): parse the line, check the image (hash it); for an
   open-vocabulary detector also extract the claims, whose labels it will be asked for;
3. each *unique* image (by content hash) detected once, in an actor pool that loads the detector in
   its ``__init__`` (``num_gpus`` each when asked); the detections are gathered into one table;
4. claims, verify + rewrite, in CPU actors, with that table;
5. the driver writes the rows in input order through the local pipeline's atomic writer
   (:func:`fix_files`), bad records to the errors file with their source file and line.

Install with ``pip install "halluguard-vlm[ray]"``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from halluguard.images import ImageRef
from halluguard.io import AtomicJsonlWriter, ErrorRecord, dumps, fingerprint, parse_line
from halluguard.correctors.woodpecker import claimed_labels
from halluguard.pipeline import ImageStore, PassThrough, Summary, checks_nothing, record_error, run_options
from halluguard.records import Answer, Correction, RecordError


def connect(address: str | None = None, num_cpus: int | None = None, verbose: bool | None = None) -> None:
    """``ray.init`` with a clear error when a cluster address does not answer.

    Quiet unless ``verbose`` (default: ``$HALLUGUARD_VERBOSE`` set, as the CLI's ``-v`` sets it): Ray's INFO
    lines, its workers' log lines and Ray Data's progress bars are left out.
    """
    import logging
    import os

    import ray
    import ray.data

    verbose = bool(os.environ.get("HALLUGUARD_VERBOSE")) if verbose is None else verbose
    level = logging.INFO if verbose else logging.ERROR
    for name in ("ray", "ray.data", "ray.serve"):
        logging.getLogger(name).setLevel(level)
    if ray.is_initialized():
        return
    if address and address != "auto":
        _probe(address)
    quiet = {"log_to_driver": verbose, "logging_level": level}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = verbose
        if hasattr(context, "print_on_execution_start"):
            context.print_on_execution_start = verbose
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConnectionError(
            f"cannot reach a Ray cluster at {address!r}: {exc}. Start one with 'ray start --head' and pass its "
            "address (e.g. --ray-address 10.0.0.1:6379), or leave --ray-address out to start a local one"
        ) from exc


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast (Ray itself retries for minutes) when nothing listens at ``address``."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise ConnectionError(
            f"cannot reach a Ray cluster at {address!r} ({exc}). Start one with 'ray start --head' and pass "
            "its address (host:port), or leave --ray-address out to start a local one"
        ) from exc


def read_answers(paths: str | Path | Iterable[str | Path]):
    """A ``ray.data.Dataset`` of ``{source, line, raw}`` rows from JSONL files or folders of shards."""
    import ray.data

    files = [str(p) for p in input_files(paths)]
    shards = ray.data.read_binary_files(files, include_paths=True)
    return shards.flat_map(_split_lines)


def input_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The JSONL files named, folders expanded to their ``*.jsonl`` shards, in a stable order."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.jsonl") if not p.name.endswith(".errors.jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input not found: {path}")
    if not files:
        raise FileNotFoundError(f"no .jsonl files in {', '.join(map(str, paths))}")
    return files


def _split_lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    lines = bytes(row["bytes"]).split(b"\n")
    out = []
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r")
        if raw.strip():
            out.append({"source": row["path"], "line": number, "raw": raw})
    return out


DETECTOR_OPTIONS = ("device", "detector_labels")


class _Stage:
    """What the three stages share: the corrector, built once per actor (with its detector only
    in the detection stage, so CPU actors never load detector weights)."""

    loads_detector = False

    def __init__(self, detector: Any, options: dict[str, Any], text_field: str | None, images: str | None):
        from halluguard.correctors.woodpecker import Woodpecker

        self.passthrough = checks_nothing(detector, options)
        if self.passthrough:
            self.corrector: Any = PassThrough()
        else:
            if not self.loads_detector:  # detector-only options mean nothing to a CPU stage
                detector, options = "none", {k: v for k, v in options.items() if k not in DETECTOR_OPTIONS}
            self.corrector = Woodpecker.from_spec(detector, **options)
        self.text_field = text_field
        self.images = Path(images) if images else None
        self.store = ImageStore()

    def parse(self, row: dict[str, Any]) -> Answer | ErrorRecord:
        source = str(row["source"])
        return parse_line(int(row["line"]), bytes(row["raw"]), Path(source).parent, text_field=self.text_field,
                          images_dir=self.images, source=source)


class ImageStage(_Stage):
    """Stage 1 (CPU): parse each line and check its image (hash it). For an open-vocabulary
    detector it also extracts the claims, whose labels are what the detector is asked for."""

    def __init__(self, *args: Any, asks_labels: bool = False):
        super().__init__(*args)
        self.asks_labels = asks_labels and not self.passthrough

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = _rows(batch)
        answers, refs, slots = [], [], []
        out = [{"error": b"", "sha1": "", "image_path": "", "image_key": "", "labels": "[]"} for _ in rows]
        for i, row in enumerate(rows):
            parsed = self.parse(row)
            if isinstance(parsed, ErrorRecord):
                out[i]["error"] = dumps(parsed.to_json())
                continue
            try:
                ref = self.store.get(parsed)
            except RecordError as exc:
                out[i]["error"] = _error_line(parsed, exc, row)
                continue
            if ref is not None:
                answers.append(parsed)
                refs.append(ref)
                slots.append(i)
        claims = self.corrector.extract([a.text for a in answers]) if self.asks_labels else [[] for _ in answers]
        for i, ref, answer_claims in zip(slots, refs, claims):
            out[i].update(sha1=ref.sha1, image_path=str(ref.path or ""), image_key=ref.key or "",
                          labels=json.dumps(sorted(claimed_labels(answer_claims))))
        return _columns(rows, out)


class DetectStage(_Stage):
    """Stage 2 (the detector's actors): one row per unique image -> its pickled detections."""

    loads_detector = True

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = _rows(batch)
        refs = [ImageRef(Path(r["image_path"]) if r["image_path"] else None, r["image_key"] or None, _sha1=r["sha1"])
                for r in rows]
        queries = [json.loads(r["labels"]) for r in rows]
        cached = self.corrector.detector
        before = cached.calls
        found = cached.detect_each(refs, queries)
        calls = [cached.calls - before] + [0] * (len(rows) - 1)  # images the backend really ran on
        return {"sha1": [r["sha1"] for r in rows], "detections": [pickle.dumps(f) for f in found], "calls": calls}


class SettleStage(_Stage):
    """Stage 3 (CPU): claims, then verify, score and rewrite each answer with the detections table
    (claims and rewriting in one actor, so each answer is parsed once, as in the local run)."""

    def __init__(self, *args: Any, detections: Any = None):
        super().__init__(*args)
        import ray

        table = ray.get(detections) if isinstance(detections, ray.ObjectRef) else (detections or {})
        self.detections = {sha1: pickle.loads(blob) for sha1, blob in table.items()}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = _rows(batch)
        good = [i for i, row in enumerate(rows) if not row["error"]]
        answers = {i: self.parse(rows[i]) for i in good}
        refs = {i: self.store.get(answers[i]) if rows[i]["sha1"] else None for i in good}  # type: ignore[arg-type]
        if self.passthrough:
            results = self.corrector.correct([answers[i] for i in good], [refs[i] for i in good])
        else:
            docs = self.corrector.parse([answers[i].text for i in good])  # type: ignore[union-attr]
            claims = [doc._.claims for doc in docs]
            found = [self.detections[rows[i]["sha1"]] if refs[i] is not None else
                     self.corrector.detect([None], [answer_claims])[0] for i, answer_claims in zip(good, claims)]
            results = self.corrector.settle_each(
                [answers[i] for i in good], claims, found, [refs[i] for i in good], docs
            )
        outcome = dict(zip(good, results))
        lines, failed, corrected = [], [], []
        for i, row in enumerate(rows):
            result = outcome.get(i)
            if result is None:
                lines.append(bytes(row["error"]))
            elif isinstance(result, RecordError):
                lines.append(_error_line(answers[i], result, row))  # type: ignore[arg-type]
            else:
                lines.append(dumps({**answers[i].record, **result.to_json()}))  # type: ignore[union-attr]
            failed.append(not isinstance(result, Correction))
            corrected.append(isinstance(result, Correction) and bool(result.edits))
        return {"source": [r["source"] for r in rows], "line": [r["line"] for r in rows],
                "is_error": failed, "corrected": corrected, "out": lines}


def asks_labels(detector: Any) -> bool:
    """Whether a detector spec is open-vocabulary (it must be told which labels to look for).
    Closed-vocabulary specs: none, person, annotations/JSON, YOLO weights; anything else asks."""
    if not isinstance(detector, (str, Path)):
        return getattr(detector, "vocabulary", None) is None
    spec = str(detector).lower()
    closed = spec in ("none", "person") or spec.startswith(("annotations:", "yolo:")) or \
        spec.endswith((".json", ".pt", ".onnx", "_openvino_model"))
    return not closed


def fix_dataset(
    ds: Any,
    *,
    detector: Any = "yolo11n.pt",
    options: dict[str, Any] | None = None,
    text_field: str | None = None,
    images: str | Path | None = None,
    num_gpus: float = 0,
    concurrency: int = 1,
    batch_size: int = 256,
    stats: dict[str, Any] | None = None,
):
    """Correct a Dataset of ``{source, line, raw}`` rows (see :func:`read_answers`).

    Returns a Dataset of ``{source, line, is_error, out}`` rows, ``out`` being the output (or error)
    JSON line, byte for byte what the local ``fix`` writes. ``stats``, if given, receives
    ``unique_images`` and ``detector_calls``.
    """
    import ray
    from ray.data.expressions import col

    args = (detector, options or {}, text_field, str(images) if images else None)
    claimed = ds.map_batches(ImageStage, fn_constructor_args=args, batch_size=batch_size,
                             fn_constructor_kwargs={"asks_labels": asks_labels(detector)},
                             compute=_pool(concurrency), batch_format="numpy").materialize()
    unique = (claimed.filter(expr=col("sha1") != "")
              .select_columns(["sha1", "image_path", "image_key", "labels"])
              .groupby("sha1").map_groups(_first_of_group, batch_format="numpy"))
    table: dict[str, bytes] = {}
    calls = 0
    if not checks_nothing(detector, options or {}):
        detected = unique.map_batches(DetectStage, fn_constructor_args=args, batch_size=32,
                                      compute=_pool(concurrency), num_gpus=num_gpus or None,
                                      batch_format="numpy")
        for row in detected.iter_rows():
            table[row["sha1"]] = bytes(row["detections"])
            calls += int(row["calls"])
    if stats is not None:
        stats["unique_images"] = len(table)
        stats["detector_calls"] = calls
    return claimed.map_batches(SettleStage, fn_constructor_args=args,
                               fn_constructor_kwargs={"detections": ray.put(table)}, batch_size=batch_size,
                               compute=_pool(concurrency), batch_format="numpy")


def fix_files(
    input: str | Path,
    output: str | Path,
    *,
    detector: Any = "yolo11n.pt",
    options: dict[str, Any] | None = None,
    text_field: str | None = None,
    images: str | Path | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: float = 0,
    concurrency: int = 1,
    stats: dict[str, Any] | None = None,
) -> Summary:
    """``halluguard fix --engine ray``: JSONL file -> file, or folder of shards -> folder of shards."""
    import time

    import ray.data

    started = time.perf_counter()
    input, output = Path(input), Path(output)
    files = input_files(input)
    targets = {str(f): (output / f.name if input.is_dir() else output) for f in files}
    connect(address, num_cpus)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    settings = run_options(detector, options, text_field, images)
    writers: dict[str, AtomicJsonlWriter] = {}
    for source, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        writers[source] = AtomicJsonlWriter(target, fingerprint(Path(source), settings))
    fixed = fix_dataset(read_answers(files), detector=detector, options=options, text_field=text_field, images=images,
                        num_gpus=num_gpus, concurrency=concurrency, stats=stats)
    try:
        for batch in fixed.iter_batches(batch_size=1024, batch_format="numpy"):
            columns = (batch["source"], batch["line"], batch["is_error"], batch["corrected"], batch["out"])
            for source, line, is_error, corrected, out in zip(*columns):
                writer = writers[str(source)]
                writer.lines_done = int(line)
                writer.write_line(bytes(out), error=bool(is_error), corrected=bool(corrected))
        for writer in writers.values():
            writer.commit()
    finally:
        for writer in writers.values():
            writer.close()
    return Summary.of(list(writers.values()), started, output)


# -- helpers ---------------------------------------------------------------------------------------

def _error_line(answer: Answer, exc: RecordError, row: dict[str, Any]) -> bytes:
    return dumps(record_error(answer, exc, bytes(row["raw"]), str(row["source"])).to_json())


def _pool(concurrency: int) -> Any:
    """Up to ``concurrency`` actors, scaled by Ray to what the cluster has free (a fixed pool that
    takes every CPU would leave none for the tasks that read the input)."""
    from ray.data import ActorPoolStrategy

    return ActorPoolStrategy(min_size=1, max_size=max(1, concurrency))


def _rows(batch: dict[str, Any]) -> list[dict[str, Any]]:
    keys = list(batch)
    return [dict(zip(keys, values)) for values in zip(*(batch[k] for k in keys))]


def _columns(rows: list[dict[str, Any]], extra: list[dict[str, Any]]) -> dict[str, list[Any]]:
    merged = [{**row, **more} for row, more in zip(rows, extra)]
    return {key: [m[key] for m in merged] for key in merged[0]} if merged else {}


def _first_of_group(group: dict[str, Any]) -> dict[str, Any]:
    labels: set[str] = set()
    for text in group["labels"]:
        labels.update(json.loads(text))
    return {"sha1": group["sha1"][:1], "image_path": group["image_path"][:1], "image_key": group["image_key"][:1],
            "labels": [json.dumps(sorted(labels))]}


# -- eval --engine ray ------------------------------------------------------------------------------

class ScoreStage:
    """Score a batch of run lines with a metric's per-record half (``score_records``)."""

    def __init__(self, metric: str, reference: Any, text_field: str | None, strict: bool, standard: bool):
        import ray

        self.metric = metric
        self.reference = ray.get(reference) if isinstance(reference, ray.ObjectRef) else reference
        self.text_field, self.strict, self.standard = text_field, strict, standard

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from halluguard.metrics import chair, faithfulness, pope
        from halluguard.metrics.runs import run_from_lines

        lines = [(int(n), bytes(raw)) for n, raw in zip(batch["line"], batch["raw"])]
        run = run_from_lines(lines, text_field=self.text_field, require_text=self.metric != "faithfulness")
        if self.metric == "chair":
            scored = chair.score_records(run, self.reference, standard=self.standard)
        elif self.metric == "pope":
            scored = pope.score_records(run, self.reference, strict=self.strict, in_order=False)
        else:
            scored = faithfulness.score_records(run)
        return {"scored": [pickle.dumps(scored)]}


def score_runs(
    metric: str,
    paths: list[str | Path],
    reference: Any,
    *,
    names: Any = None,
    text_fields: list[str | None] | None = None,
    strict: bool = False,
    standard: bool = True,
    address: str | None = None,
    num_cpus: int | None = None,
    concurrency: int = 2,
) -> list[Any]:
    """``evaluate(..., engine="ray")``: per-record scoring on the cluster, the whole-run half here."""
    import ray
    import ray.data

    from halluguard.metrics import chair, faithfulness, pope
    from halluguard.metrics.runs import UsageError

    if metric not in ("chair", "pope", "faithfulness"):
        raise UsageError(f"--engine ray scores chair, pope or faithfulness, not {metric!r}")
    connect(address, num_cpus)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    shared = ray.put(reference)
    results = []
    for i, path in enumerate(map(Path, paths)):
        if not path.is_file():
            raise UsageError(f"run file not found: {path}")
        scored = read_answers(path).map_batches(
            ScoreStage, fn_constructor_args=(metric, shared, (text_fields or [None] * len(paths))[i], strict, standard),
            batch_size=1024,
            compute=_pool(concurrency), batch_format="numpy")
        items: list[Any] = []
        errors: list[dict[str, Any]] = []
        for row in scored.iter_rows():
            batch_items, batch_errors = pickle.loads(bytes(row["scored"]))
            items.extend(batch_items)
            errors.extend(batch_errors)
        name = names[i] if names else path.name
        if metric == "chair":
            results.append(chair.finish(name, items, errors))
        elif metric == "pope":
            results.append(pope.finish(name, items, errors, splits=pope._splits(reference)))
        else:
            results.append(faithfulness.finish(name, items, errors))
    return results
