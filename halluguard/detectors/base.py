"""The detector protocol and the per-run detection cache.

A detector turns images into :class:`~halluguard.records.Detections`: boxes in pixels, scores,
labels, and the set of labels it can see at all (``None`` for open vocabulary). Every backend
implements ``detect(images) -> list[Detections]``; :class:`CachedDetector` wraps any of them so
that each unique image (by content) is detected once per run.

>>> class Nothing:
...     vocabulary = frozenset({"dog"})
...     def detect(self, images, queries=None):
...         return [Detections([], None, self.vocabulary) for _ in images]
>>> cached = CachedDetector(Nothing())
>>> cached.detect([]) == []
True

Queries (open vocabulary)
-------------------------
A closed-vocabulary detector (``vocabulary`` is a set) looks for all its classes and may ignore
``queries``. An open-vocabulary detector (``vocabulary is None``) looks for what it is asked:
``queries`` is one list of labels per image (or one list of strings for all images); the verifier
asks for the labels the answer claims. Its results for a label never depend on which other labels
were asked with it, so :class:`CachedDetector` caches them per (image, label) and runs the model
only for labels it has not seen for that image yet. The :class:`Detections` it returns for an image
carry ``vocabulary`` = the labels looked for in that image: a label nobody asked about stays
unverifiable instead of being contradicted by an empty result.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from halluguard.images import ImageRef
from halluguard.records import Detection, Detections, RecordError

Queries = Sequence[Sequence[str]] | Sequence[str] | None


class DetectorError(Exception):
    """A detector cannot be built or run at all (unknown spec, missing weights or extra).

    Unlike :class:`~halluguard.records.RecordError` (one bad image), this stops the run; the
    message says what was asked and what to do.
    """


@runtime_checkable
class Detector(Protocol):
    """What every detector backend provides.

    ``detect(images, queries=None)`` returns one :class:`Detections` per image, in order, and
    raises ``RecordError`` for a bad image. Closed-vocabulary backends may leave ``queries`` out
    of their signature: :class:`CachedDetector` only passes it to open-vocabulary ones.
    """

    #: labels it can see; None = open vocabulary
    vocabulary: frozenset[str] | None

    def detect(self, images: Sequence[ImageRef], queries: Queries = None) -> list[Detections]:
        """One :class:`Detections` per image, in order. Raise ``RecordError`` for a bad image."""
        ...


@dataclass
class AnnotatedDetections(Detections):
    """Detections that come from annotations rather than a model.

    ``has_boxes`` is ``False`` when the annotations list labels without boxes: the detections'
    boxes are then ``(0, 0, 0, 0)`` placeholders and geometry (colours, relations) cannot be
    checked. ``instances`` is ``False`` when each label is listed once per image (a set of labels,
    as in CHAIR's ground truth): presence can be checked, counts cannot.
    """

    has_boxes: bool = True
    instances: bool = True


def has_boxes(detections: Detections) -> bool:
    """Whether the boxes of ``detections`` are real geometry (model output or boxed annotations)."""
    return bool(getattr(detections, "has_boxes", True))


def counts_instances(detections: Detections) -> bool:
    """Whether one detection stands for one object instance (so boxes can be counted)."""
    return bool(getattr(detections, "instances", True))


def normalize_queries(images: Sequence[Any], queries: Queries) -> list[list[str]] | None:
    """One list of unique, stripped labels per image, or ``None``.

    >>> normalize_queries([1, 2], ["dog", "cat", "dog"])
    [['dog', 'cat'], ['dog', 'cat']]
    >>> normalize_queries([1], [[" dog "]])
    [['dog']]
    """
    if queries is None:
        return None
    queries = list(queries)
    if queries and all(isinstance(q, str) for q in queries):
        shared = list(dict.fromkeys(q.strip() for q in queries if q.strip()))  # type: ignore[union-attr]
        return [list(shared) for _ in images]
    if len(queries) != len(images):
        raise ValueError(f"queries: expected one list per image ({len(images)}), got {len(queries)}")
    out = []
    for per_image in queries:
        if isinstance(per_image, str):
            raise TypeError("queries: pass a list of labels per image, not a string")
        out.append(list(dict.fromkeys(q.strip() for q in (per_image or ()) if q and q.strip())))
    return out


class CachedDetector:
    """Detect each unique image once (keyed by content hash), batching the misses.

    - The key is the image's ``sha1`` (its bytes), so the same picture under two names is detected
      once; a backend that answers by name instead (annotations) provides ``cache_key(image)``.
    - Open-vocabulary backends are cached per (image, label): asking again for a label already
      looked for in that image costs nothing; new labels run the model for those labels only.
    - A bad image in a batch does not fail the others: the batch is retried image by image, and the
      image's ``RecordError`` is kept and raised again whenever that image is asked for.

    ``calls`` counts images actually sent to the wrapped detector. The cache holds at most
    ``max_entries`` results (detections are small; pixels are not kept).
    """

    def __init__(self, detector: Detector, max_entries: int = 100_000):
        self.detector = detector
        self.vocabulary = detector.vocabulary
        self.max_entries = max_entries
        self.calls = 0
        self._cache: OrderedDict[Any, Detections | RecordError] = OrderedDict()
        self._key_of: Callable[[ImageRef], Any] = getattr(detector, "cache_key", None) or (
            lambda image: image.sha1
        )

    def __repr__(self) -> str:
        return f"CachedDetector({self.detector!r}, cached={len(self._cache)}, calls={self.calls})"

    def cache_key(self, image: ImageRef) -> Any:
        return self._key_of(image)

    def detect(self, images: Sequence[ImageRef], queries: Queries = None) -> list[Detections]:
        """Like the wrapped detector's ``detect``; raises the first bad image's ``RecordError``."""
        results = self.detect_each(images, queries)
        for result in results:
            if isinstance(result, RecordError):
                raise result
        return results  # type: ignore[return-value]

    def detect_each(
        self, images: Sequence[ImageRef], queries: Queries = None
    ) -> list[Detections | RecordError]:
        """One result per image: its :class:`Detections`, or the ``RecordError`` it raised."""
        images = list(images)
        if self.vocabulary is None:
            per_image = normalize_queries(images, queries)
            if per_image is not None:
                return self._detect_open(images, per_image)
        keys = [self._safe_key(image) for image in images]
        missing: dict[Any, ImageRef] = {}
        for image, key in zip(images, keys):
            if not isinstance(key, RecordError) and key not in self._cache and key not in missing:
                missing[key] = image
        fresh: dict[Any, Detections | RecordError] = {}
        if missing:
            fresh = dict(zip(missing, self._run(list(missing.items()), None)))
        return [
            key if isinstance(key, RecordError) else fresh[key] if key in fresh else self._get(key)
            for key in keys
        ]

    # -- internals ---------------------------------------------------------------------------

    def _safe_key(self, image: ImageRef) -> Any:
        try:
            return self._key_of(image)
        except RecordError as exc:
            return exc

    def _get(self, key: Any) -> Detections | RecordError:
        self._cache.move_to_end(key)
        return self._cache[key]

    def _put(self, key: Any, value: Detections | RecordError) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    def _call(self, images: list[ImageRef], queries: list[list[str]] | None) -> list[Detections]:
        self.calls += len(images)
        if queries is None:
            results = self.detector.detect(images)
        else:
            results = self.detector.detect(images, queries=queries)
        if len(results) != len(images):
            raise DetectorError(
                f"{type(self.detector).__name__}.detect returned {len(results)} results "
                f"for {len(images)} images"
            )
        return results

    def _run(
        self, items: list[tuple[Any, ImageRef]], queries: list[list[str]] | None
    ) -> list[Detections | RecordError]:
        """Detect ``items`` as one batch, falling back to one by one when an image is bad."""
        images = [image for _, image in items]
        try:
            results: list[Detections | RecordError] = list(self._call(images, queries))
        except RecordError:
            if len(items) == 1:
                raise
            results = []
            for i, image in enumerate(images):
                try:
                    results.extend(self._call([image], None if queries is None else [queries[i]]))
                except RecordError as exc:
                    results.append(exc)
        if queries is None:
            for (key, _), result in zip(items, results):
                self._put(key, result)
        return results

    def _detect_open(
        self, images: list[ImageRef], queries: list[list[str]]
    ) -> list[Detections | RecordError]:
        keys = [self._safe_key(image) for image in images]
        # per unique image: the labels not looked for yet
        todo: dict[Any, tuple[ImageRef, list[str]]] = {}
        entries: dict[Any, _OpenEntry | RecordError] = {}  # this call's results, safe from eviction
        for image, key, labels in zip(images, keys, queries):
            if isinstance(key, RecordError):
                continue
            entry = self._cache.get(("open", key))
            if entry is not None:
                entries[key] = entry  # type: ignore[assignment]
            if isinstance(entry, RecordError):
                continue
            seen = entry.by_label if isinstance(entry, _OpenEntry) else {}
            new = [label for label in labels if label not in seen]
            if key in todo:
                new = [label for label in new if label not in todo[key][1]]
                todo[key][1].extend(new)
            elif new:
                todo[key] = (image, new)
        if todo:
            items = [(key, image) for key, (image, _) in todo.items()]
            asked = [labels for _, labels in todo.values()]
            try:
                results = self._run(items, asked)
            except RecordError as exc:  # a single bad image
                results = [exc]
            for (key, _), labels, result in zip(items, asked, results):
                if isinstance(result, RecordError):
                    entries[key] = result
                    self._put(("open", key), result)
                    continue
                entry = entries.get(key) or self._cache.get(("open", key))
                if not isinstance(entry, _OpenEntry):
                    entry = _OpenEntry(result.image_size, {})
                for label in labels:
                    entry.by_label[label] = [d for d in result.detections if d.label == label]
                entries[key] = entry
                self._put(("open", key), entry)
        out: list[Detections | RecordError] = []
        for key, labels in zip(keys, queries):
            if isinstance(key, RecordError):
                out.append(key)
                continue
            if key in entries:
                entry = entries[key]
            else:
                entry = self._get(("open", key)) if ("open", key) in self._cache else None
            if isinstance(entry, RecordError):
                out.append(entry)
            elif entry is None:  # nothing asked for this image
                out.append(Detections([], None, frozenset()))
            else:
                found = [d for label in labels for d in entry.by_label.get(label, [])]
                out.append(Detections(found, entry.image_size, frozenset(labels)))
        return out


@dataclass
class _OpenEntry:
    image_size: tuple[int, int] | None
    by_label: dict[str, list[Detection]]


class NoDetector:
    """The detector that knows no labels: every claim stays unverifiable.

    >>> NoDetector().detect([ImageRef(None, "1")])[0].vocabulary
    frozenset()
    """

    vocabulary: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return "NoDetector()"

    def cache_key(self, image: ImageRef) -> Any:
        return "none"

    def detect(self, images: Sequence[ImageRef], queries: Queries = None) -> list[Detections]:
        return [Detections([], None, self.vocabulary) for _ in images]


__all__ = [
    "AnnotatedDetections",
    "CachedDetector",
    "Detector",
    "DetectorError",
    "NoDetector",
    "Queries",
    "counts_instances",
    "has_boxes",
    "normalize_queries",
]
