"""CHAIR: how many of the COCO objects a caption names are not in the image.

The standard definition of Rohrbach et al., "Object Hallucination in Image Captioning" (EMNLP 2018),
as computed by the widely used ``chair.py`` (LisaAnne/Hallucination, and its standalone version,
Maxlinn/CHAIR-metric-standalone, also in the OPERA repository, that adds recall), token for token by
default (``tests/metrics/test_chair_parity.py``); ``standard=False`` applies halluguard's corrections
(see :mod:`~halluguard.metrics.coco_vocabulary`):

- **CHAIR_s** = captions naming at least one object absent from the image / all captions.
- **CHAIR_i** = mentions of absent objects / all object mentions (a word repeated counts again).
- **recall** = ground-truth objects the caption names / ground-truth objects (summed over captions).
- **avg_words**: word tokens per caption (punctuation not counted). Longer captions name more
  objects and hallucinate more, so compare CHAIR between runs of similar length.

All rates are in percent. Which words name which object is :mod:`halluguard.metrics.coco_vocabulary`.
The ground truth of an image is the set of COCO classes in its instance annotations plus those named in
its reference captions (the standard union), or any ``{image_id: [objects]}`` table.

>>> gt = {"1": {"dog", "person"}}
>>> result = compute_chair([("1", "A man walks his dog past a bench."), ("1", "A dog.")], gt)
>>> result.chair_s, result.chair_i, result.recall
(50.0, 25.0, 75.0)
>>> [m.word for m in result.captions[0].hallucinated]
['bench']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from halluguard.metrics.coco_vocabulary import Mention, canonical, find_mentions, tokenize
from halluguard.metrics.runs import (
    MetricRun,
    Run,
    UsageError,
    image_key,
    load_json_or_jsonl,
    occurrence_keys,
    record_image_key,
)

__all__ = [
    "overlap_warning",
    "vocabulary_mentions",
    "CaptionScore",
    "ChairResult",
    "compute_chair",
    "evaluate_run",
    "load_ground_truth",
    "score_caption",
]

RATES = ("chair_s", "chair_i", "recall")


@dataclass
class CaptionScore:
    """One caption scored: its mentions, the hallucinated ones, and the ground-truth objects recalled."""

    key: str
    mentions: list[Mention]
    hallucinated: list[Mention]
    ground_truth: frozenset[str]
    recalled: frozenset[str]
    n_words: int

    @property
    def is_hallucinated(self) -> bool:
        return bool(self.hallucinated)


def vocabulary_mentions(caption: str, vocabulary: Any, tokens: list | None = None) -> list[Mention]:
    """Mentions of a custom vocabulary's labels (a ``halluguard.correctors.vocabulary.Vocabulary``):
    the longest phrase first, left to right; a phrase the vocabulary marks as no object absorbs its words.

    >>> from halluguard.correctors.vocabulary import Vocabulary
    >>> lab = Vocabulary().extend({"moon": ["crescent"], "diamond": ["diamonds"]})
    >>> [(m.word, m.label) for m in vocabulary_mentions("Two diamonds under a crescent.", lab)]
    [('diamonds', 'diamond'), ('crescent', 'moon')]
    """
    tokens = tokenize(caption) if tokens is None else tokens
    out, i = [], 0
    while i < len(tokens):
        for n in range(min(vocabulary.max_words, len(tokens) - i), 0, -1):
            span = tokens[i : i + n]
            if not all(t.is_word for t in span):
                continue
            found, label = vocabulary.entry([t.text for t in span])
            if found:
                if label is not None:
                    out.append(Mention(" ".join(t.text for t in span), label, span[0].start, span[-1].end))
                i += n
                break
        else:
            i += 1
    return out


def score_caption(
    caption: str, ground_truth: Iterable[str], key: str = "", standard: bool = True, vocabulary: Any = None
) -> CaptionScore:
    """Score one caption against the set of COCO classes in its image.

    ``standard`` applies the official script's rules (default, comparable with published figures) or
    halluguard's corrections (``False``); see :mod:`~halluguard.metrics.coco_vocabulary`. A custom
    ``vocabulary`` (other labels than COCO's: :func:`vocabulary_mentions`) replaces both.

    >>> s = score_caption("Two cats on a sofa next to a remote.", {"cat", "couch"})
    >>> [m.label for m in s.hallucinated], sorted(s.recalled)
    (['remote'], ['cat', 'couch'])
    """
    gt = frozenset(ground_truth)
    tokens = tokenize(caption)
    if vocabulary is not None:
        mentions = vocabulary_mentions(caption, vocabulary, tokens)
    else:
        mentions = find_mentions(caption, standard=standard, tokens=tokens)
    hallucinated = [m for m in mentions if m.label not in gt]
    recalled = frozenset(m.label for m in mentions if m.label in gt)
    n_words = sum(1 for t in tokens if t.is_word)
    return CaptionScore(key, mentions, hallucinated, gt, recalled, n_words)


@dataclass
class ChairResult:
    """CHAIR over a set of captions; rates in percent (NaN when undefined)."""

    captions: list[CaptionScore]

    def parts(self) -> dict[str, tuple[list[float], list[float]]]:
        """Per-caption numerators and denominators of each rate (see :mod:`.statistics`)."""
        c = self.captions
        return {
            "chair_s": ([float(s.is_hallucinated) for s in c], [1.0] * len(c)),
            "chair_i": ([float(len(s.hallucinated)) for s in c], [float(len(s.mentions)) for s in c]),
            "recall": ([float(len(s.recalled)) for s in c], [float(len(s.ground_truth)) for s in c]),
        }

    def _rate(self, name: str) -> float:
        num, den = self.parts()[name]
        total = sum(den)
        return 100.0 * sum(num) / total if total else float("nan")

    @property
    def n(self) -> int:
        return len(self.captions)

    @property
    def chair_s(self) -> float:
        return self._rate("chair_s")

    @property
    def chair_i(self) -> float:
        return self._rate("chair_i")

    @property
    def recall(self) -> float:
        return self._rate("recall")

    @property
    def avg_words(self) -> float:
        return sum(s.n_words for s in self.captions) / self.n if self.n else float("nan")

    def summary(self) -> dict[str, Any]:
        rates = {}
        for name, (num, den) in self.parts().items():  # the parts once, not once per rate
            total = sum(den)
            rates[name] = 100.0 * sum(num) / total if total else float("nan")
        return {
            **rates,
            "n": self.n,
            "avg_words": self.avg_words,
            "mentions": sum(len(s.mentions) for s in self.captions),
            "hallucinated_mentions": sum(len(s.hallucinated) for s in self.captions),
        }


def compute_chair(
    captions: Iterable[tuple[Any, str]], ground_truth: dict[str, Any], standard: bool = True
) -> ChairResult:
    """CHAIR of ``(image key, caption)`` pairs; every key must be in ``ground_truth``.

    Keys are normalised with :func:`~halluguard.metrics.runs.image_key` (``139`` and
    ``"COCO_val2014_000000000139.jpg"`` are the same image).
    """
    gt = {image_key(k): v for k, v in ground_truth.items()}
    scores = []
    for key, text in captions:
        k = image_key(key)
        if k not in gt:
            raise KeyError(f"image {key!r} is not in the ground truth")
        scores.append(score_caption(text, gt[k], key=k or "", standard=standard))
    return ChairResult(scores)


# --------------------------------------------------------------------------- ground truth


def _objects(names: Iterable[Any]) -> set[str]:
    """Class names from labels or ``{"label": ...}`` entries, mapped through the synonym table."""
    out = set()
    for name in names:
        if isinstance(name, dict):
            name = name.get("label", name.get("name", name.get("category")))
        if isinstance(name, str) and name.strip():
            out.add(canonical(name) or name.strip().lower())
    return out


def _add(gt: dict[str, set[str]], key: Any, objects: Iterable[str]) -> None:
    k = image_key(key)
    if k is not None:
        gt.setdefault(k, set()).update(objects)


def ground_truth_from(
    data: Any, source: str = "annotations", standard: bool = True
) -> tuple[dict[str, set[str]], str]:
    """Objects per image from one parsed annotation document; returns ``(table, kind)``.

    Understands COCO instances JSON (``categories`` + ``annotations``), COCO captions JSON (objects named
    in the reference captions, by the CHAIR rules: ``standard`` as for the captions scored), ``{image_id or
    file name: [objects]}`` (an object is a
    class name or ``{"label": ..., "box": ...}``, as the annotations detector reads) and POPE's
    segmentation JSONL (``{"image": ..., "objects": [...]}`` per line).
    """
    gt: dict[str, set[str]] = {}
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        anns = data["annotations"]
        for image in data.get("images") or []:
            if isinstance(image, dict) and "id" in image:
                _add(gt, image["id"], ())
        if "categories" in data:
            names = {c["id"]: c["name"] for c in data["categories"]}
            for ann in anns:
                if ann.get("category_id") in names:
                    _add(gt, ann.get("image_id"), _objects([names[ann["category_id"]]]))
            return gt, "coco-instances"
        if anns and isinstance(anns[0], dict) and "caption" in anns[0]:
            for ann in anns:
                mentions = find_mentions(str(ann.get("caption", "")), standard=standard)
                _add(gt, ann.get("image_id"), (m.label for m in mentions))
            return gt, "coco-captions"
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        for key, names in data.items():
            _add(gt, key, _objects(names))
        return gt, "objects-table"
    if isinstance(data, list) and data and all(isinstance(x, dict) and "objects" in x for x in data):
        for item in data:
            _add(gt, item.get("image_id", item.get("image")), _objects(item["objects"]))
        return gt, "objects-list"
    raise UsageError(
        f"{source}: not a ground-truth file for CHAIR: expected COCO instances or captions JSON, "
        "a {image_id: [objects]} table, or JSONL lines with 'image' and 'objects'"
    )


def load_ground_truth(*sources: str | Path | Any, standard: bool = True) -> dict[str, frozenset[str]]:
    """The union of the objects per image in several annotation files (or parsed documents); reference
    captions are read with the official rules unless ``standard=False``.

    >>> gt = load_ground_truth({"1": ["dog", "Dining Table"]}, {"1": ["puppy"], "2": []})
    >>> sorted(gt["1"]), sorted(gt["2"])
    (['dining table', 'dog'], [])
    """
    if not sources:
        raise UsageError(
            "CHAIR needs ground truth: pass --annotations "
            "(COCO instances/captions JSON or {image_id: [objects]})"
        )
    merged: dict[str, set[str]] = {}
    for source in sources:
        if isinstance(source, (str, Path)):
            table, _ = ground_truth_from(load_json_or_jsonl(source), str(source), standard)
        else:
            table, _ = ground_truth_from(source, standard=standard)
        for key, objects in table.items():
            merged.setdefault(key, set()).update(objects)
    return {k: frozenset(sorted(v)) for k, v in merged.items()}


# --------------------------------------------------------------------------- runs


def evaluate_run(
    run: Run, ground_truth: dict[str, frozenset[str]], standard: bool = True, vocabulary: Any = None
) -> MetricRun:
    """Score a run's records; records without a known image become errors with their line numbers."""
    return finish(run.name, *score_records(run, ground_truth, standard=standard, vocabulary=vocabulary))


def score_records(
    run: Run, ground_truth: dict[str, frozenset[str]], standard: bool = True, vocabulary: Any = None
) -> tuple[list[CaptionScore], list[dict[str, Any]]]:
    """The per-record half of :func:`evaluate_run` (runs on any slice of a run, e.g. on a cluster)."""
    errors = list(run.errors)
    captions = []
    for rec in run.records:
        key = record_image_key(rec.record)  # normalised, as the keys of load_ground_truth are
        if key is None:
            errors.append({"line": rec.line, "reason": "no 'image_id' or 'image' field"})
        elif key not in ground_truth:
            errors.append({"line": rec.line, "reason": f"image {key!r} is not in the annotations"})
        else:
            captions.append(score_caption(rec.text, ground_truth[key], key=key, standard=standard, vocabulary=vocabulary))
    return captions, errors


def overlap_warning(ground_truth: dict[str, frozenset[str]], labels: Iterable[str]) -> str | None:
    """A warning when the ground truth names labels the vocabulary does not (then CHAIR is meaningless)."""
    truth = set().union(*ground_truth.values()) if ground_truth else set()
    known = set(labels)
    if not truth:
        return None
    unknown = sorted(truth - known)
    if len(unknown) == len(truth):
        return (
            f"none of the ground truth's {len(truth)} labels ({', '.join(unknown[:5])}"
            f"{', ...' if len(unknown) > 5 else ''}) is in the vocabulary: every mention will count as "
            "hallucinated and recall as 0. Pass --vocabulary with these labels (JSON {label: [words]})"
        )
    if len(unknown) > len(truth) / 2:
        return (
            f"{len(unknown)} of the ground truth's {len(truth)} labels are not in the vocabulary "
            f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}): they can never be recalled"
        )
    return None


def finish(name: str, captions: list[CaptionScore], errors: list[dict[str, Any]]) -> MetricRun:
    """The whole-run half of :func:`evaluate_run`: rates, keys and parts from all captions."""
    result = ChairResult(captions)
    return MetricRun(
        name=name,
        summary=result.summary(),
        keys=occurrence_keys(s.key for s in result.captions),
        parts=result.parts(),
        errors=sorted(errors, key=lambda e: e["line"]),
    )
