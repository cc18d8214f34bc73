"""Stage 5, LURE style: how suspicious each claim is, and what to do with the suspicious ones.

LURE (Zhou et al., "Analyzing and Mitigating Object Hallucination in Large Vision-Language
Models", ICLR 2024) found three signals of a hallucinated object, and masks objects past two
thresholds before its revisor rewrites the answer:

- **uncertainty**: the model's ``-log p`` of the object's tokens; LURE masks objects with
  ``-log p > 0.9`` (``UNCERTAINTY_THRESHOLD``);
- **position**: hallucinations cluster late in long answers; LURE masks objects beyond 0.8 of
  the text (``POSITION_THRESHOLD``);
- **co-occurrence**: objects that usually come with the ones already named ("a fork" after
  "a knife") are named whether or not they are there.

:func:`suspicion` turns each signal into a score in [0, 1] that crosses 0.5 exactly at its LURE
threshold, and stores their weighted mean (``WEIGHTS``, renormalised over the signals present)
in ``claim.suspicion``:

- uncertainty ``u = nll / (nll + 0.9)``, with ``nll`` the largest ``-log p`` among the tokens
  that overlap the claim's span (tokens aligned to characters; see :func:`align_tokens`);
- position ``r`` = claim start / text length: ``0.5 r / 0.8`` up to 0.8, then rising linearly
  to 1 at the end;
- co-occurrence: the largest ``P(label | earlier label)`` over the labels named before the
  claim, from :class:`CooccurrenceStats` (0.5 = the object is in half of the images that hold
  an earlier-named object).

:func:`lure_rewrite` (or :func:`~halluguard.correctors.rewrite.rewrite` with
``suspicion_threshold``) then removes or hedges ("There may be a dog") every unverifiable object
claim at or above the threshold (default 0.5); ``unverifiable="hedge"``/``"remove"`` treats
every unverifiable claim so, suspicious or not.

>>> from halluguard.records import Claim
>>> text = "A man rides a horse on the beach next to a dog."
>>> claims = [Claim("man", 2, 5, "object", "person"), Claim("dog", 43, 46, "object", "dog")]
>>> suspicion(text, claims, logprobs=None)
>>> [round(c.suspicion, 2) for c in claims]
[0.03, 0.79]
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from halluguard.records import Claim, Edit

__all__ = [
    "POSITION_THRESHOLD",
    "UNCERTAINTY_THRESHOLD",
    "WEIGHTS",
    "CooccurrenceStats",
    "align_tokens",
    "lure_rewrite",
    "select_suspicious",
    "suspicion",
    "suspicion_components",
]

#: LURE's thresholds (Zhou et al. 2024, section 3): position ratio and -log p
POSITION_THRESHOLD = 0.8
UNCERTAINTY_THRESHOLD = 0.9
#: weights of the three scores in ``claim.suspicion`` (renormalised over the scores available)
WEIGHTS: dict[str, float] = {"uncertainty": 0.5, "position": 0.3, "cooccurrence": 0.2}

_MARKERS = {"▁": " ", "Ġ": " ", "Ċ": "\n", "ĉ": "\t"}


# ---------------------------------------------------------------------- scores


def suspicion(
    answer_text: str,
    claims: Sequence[Claim],
    logprobs: Sequence[Any] | None = None,
    cooccurrence: CooccurrenceStats | None = None,
    weights: Mapping[str, float] | None = None,
) -> None:
    """Fill ``claim.suspicion`` (in [0, 1]) for every claim; see the module docstring."""
    weights = dict(WEIGHTS if weights is None else weights)
    for claim, parts in zip(claims, suspicion_components(answer_text, claims, logprobs, cooccurrence)):
        total = sum(weights.get(k, 0.0) for k in parts)
        score = sum(weights.get(k, 0.0) * v for k, v in parts.items()) / total if total > 0 else 0.0
        claim.suspicion = round(min(1.0, max(0.0, score)), 4)


def suspicion_components(
    answer_text: str,
    claims: Sequence[Claim],
    logprobs: Sequence[Any] | None = None,
    cooccurrence: CooccurrenceStats | None = None,
) -> list[dict[str, float]]:
    """The separate scores of each claim: ``position`` always, ``uncertainty`` when
    ``logprobs`` are given, ``cooccurrence`` when statistics are given."""
    length = max(1, len(answer_text.rstrip()))
    spans = align_tokens(answer_text, logprobs) if logprobs else []
    order = sorted((c.start, c.label) for c in claims if c.kind == "object")
    out = []
    for claim in claims:
        parts = {"position": position_score(claim.start / length)}
        if spans:
            nll = [-lp for (start, end, lp) in spans if start < claim.end and claim.start < end]
            if nll:
                parts["uncertainty"] = uncertainty_score(max(nll))
        if cooccurrence is not None:
            earlier = {label for start, label in order if start < claim.start and label != claim.label}
            parts["cooccurrence"] = max(
                (cooccurrence.conditional(claim.label, o) for o in earlier), default=0.0
            )
        out.append(parts)
    return out


def position_score(ratio: float) -> float:
    """0 at the start, 0.5 at LURE's 0.8, 1 at the end of the answer."""
    ratio = min(1.0, max(0.0, ratio))
    if ratio <= POSITION_THRESHOLD:
        return 0.5 * ratio / POSITION_THRESHOLD
    return 0.5 + 0.5 * (ratio - POSITION_THRESHOLD) / (1.0 - POSITION_THRESHOLD)


def uncertainty_score(nll: float) -> float:
    """``nll / (nll + 0.9)``: 0.5 at LURE's ``-log p = 0.9``, approaching 1 as p -> 0."""
    nll = max(0.0, float(nll))
    return nll / (nll + UNCERTAINTY_THRESHOLD)


def align_tokens(text: str, logprobs: Sequence[Any]) -> list[tuple[int, int, float]]:
    """Character spans ``(start, end, logprob)`` of generated tokens found in ``text``.

    Accepts ``[{"token": str, "logprob": float}, ...]`` (the record format) or ``(token,
    logprob)`` pairs. Tokenizer space markers ("▁", "Ġ") count as spaces; tokens that are not
    in the text (special tokens, byte pieces) are skipped without losing the position.

    >>> align_tokens("A dog.", [{"token": "▁A", "logprob": -0.1}, {"token": "▁dog", "logprob": -2.0},
    ...                         {"token": ".", "logprob": -0.3}, {"token": "</s>", "logprob": 0.0}])
    [(0, 1, -0.1), (2, 5, -2.0), (5, 6, -0.3)]
    """
    out: list[tuple[int, int, float]] = []
    position = 0
    for item in logprobs:
        token, logprob = _token_entry(item)
        if token is None or logprob is None or not math.isfinite(logprob):
            continue
        piece = token
        for marker, replacement in _MARKERS.items():
            piece = piece.replace(marker, replacement)
        core = piece.strip()
        if not core:
            position += len(piece) if text.startswith(piece, position) else 0
            continue
        found = text.find(core, position, position + len(piece) + 16)
        if found < 0:
            continue
        out.append((found, found + len(core), logprob))
        position = found + len(core)
    return out


def _token_entry(item: Any) -> tuple[str | None, float | None]:
    if isinstance(item, Mapping):
        token, logprob = item.get("token"), item.get("logprob")
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        token, logprob = item
    else:
        return None, None
    try:
        return (str(token) if token is not None else None), (float(logprob) if logprob is not None else None)
    except (TypeError, ValueError):
        return None, None


# ---------------------------------------------------------------------- policy


def select_suspicious(claims: Sequence[Claim], threshold: float = 0.5) -> list[Claim]:
    """Unverifiable object claims whose suspicion reaches ``threshold`` (supported ones are the
    detector's to keep, contradicted ones are removed anyway)."""
    return [
        c for c in claims
        if c.kind == "object" and c.verdict == "unverifiable" and c.suspicion is not None and c.suspicion >= threshold
    ]  # fmt: skip


def lure_rewrite(
    text: str,
    claims: Sequence[Claim],
    *,
    logprobs: Sequence[Any] | None = None,
    cooccurrence: CooccurrenceStats | None = None,
    threshold: float = 0.5,
    policy: str = "hedge",
    unverifiable: str = "keep",
    grounding: bool = False,
    doc: Any = None,
    nlp: Any = None,
) -> tuple[str, list[Edit]]:
    """Score the claims, then ``policy="hedge"`` or ``"remove"`` the suspicious ones (and fix the
    contradicted ones, as :func:`~halluguard.correctors.rewrite.rewrite` always does).

    >>> from halluguard.records import Claim
    >>> text = "There is a cat on the sofa and there is a dog."
    >>> claims = [Claim("cat", 11, 14, "object", "cat"), Claim("dog", 42, 45, "object", "dog")]
    >>> lure_rewrite(text, claims)[0]  # doctest: +SKIP
    'There is a cat on the sofa and there may be a dog.'
    """
    from halluguard.correctors.rewrite import rewrite

    suspicion(text, claims, logprobs, cooccurrence)
    return rewrite(
        text, claims, suspicion_threshold=threshold, suspicious=policy, unverifiable=unverifiable,
        grounding=grounding, doc=doc, nlp=nlp,
    )  # fmt: skip


# ---------------------------------------------------------------------- co-occurrence


class CooccurrenceStats:
    """How often labels appear in the same image, from an annotation file.

    >>> stats = CooccurrenceStats.from_label_sets([{"knife", "fork"}, {"knife", "fork"}, {"knife"}, {"dog"}])
    >>> stats.n_images, round(stats.conditional("fork", "knife"), 2), stats.probability("dog")
    (4, 0.67, 0.25)
    """

    FORMAT = "halluguard-cooccurrence"

    def __init__(self, n_images: int, counts: Mapping[str, int], pairs: Mapping[str, Mapping[str, int]]):
        self.n_images = int(n_images)
        self.counts = dict(counts)
        self.pairs = {a: dict(b) for a, b in pairs.items()}

    @classmethod
    def from_label_sets(cls, label_sets: Iterable[Iterable[str]]) -> CooccurrenceStats:
        counts: Counter[str] = Counter()
        pairs: dict[str, Counter[str]] = defaultdict(Counter)
        n = 0
        for labels in label_sets:
            unique = sorted(set(labels))
            n += 1
            counts.update(unique)
            for a in unique:
                for b in unique:
                    if a != b:
                        pairs[a][b] += 1
        return cls(n, counts, pairs)

    @classmethod
    def from_annotations(cls, path: str | os.PathLike[str]) -> CooccurrenceStats:
        """Read COCO instances JSON (``images``/``annotations``/``categories``) or a
        ``{image_id: [label | {"label": ...}, ...]}`` table."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read annotations {path}: {error}") from error
        return cls.from_label_sets(_label_sets(data, str(path)))

    def probability(self, label: str) -> float:
        """Share of images that contain ``label``."""
        return self.counts.get(label, 0) / self.n_images if self.n_images else 0.0

    def conditional(self, label: str, given: str) -> float:
        """``P(label | given)``: share of the images with ``given`` that also contain ``label``."""
        base = self.counts.get(given, 0)
        return self.pairs.get(given, {}).get(label, 0) / base if base else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT, "version": 1, "n_images": self.n_images,
            "counts": dict(sorted(self.counts.items())),
            "pairs": {a: dict(sorted(b.items())) for a, b in sorted(self.pairs.items())},
        }  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CooccurrenceStats:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read co-occurrence statistics {path}: {error}") from error
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            raise ValueError(
                f"{path} is not a co-occurrence file; build one with `halluguard cooccurrence ANNOTATIONS -o {path}`"
            )
        return cls(data["n_images"], data["counts"], data["pairs"])


def _label_sets(data: Any, source: str) -> list[set[str]]:
    if isinstance(data, dict) and "annotations" in data and "categories" in data:
        names = {c["id"]: c["name"] for c in data["categories"]}
        per_image: dict[Any, set[str]] = {img["id"]: set() for img in data.get("images", [])}
        for ann in data["annotations"]:
            per_image.setdefault(ann["image_id"], set()).add(names[ann["category_id"]])
        return list(per_image.values())
    if isinstance(data, dict):
        sets = []
        for key, labels in data.items():
            if not isinstance(labels, list):
                raise ValueError(f"{source}: image {key!r} should map to a list of labels")
            sets.append({_label(item, source, key) for item in labels})
        return sets
    raise ValueError(f"{source}: expected COCO instances JSON or {{image_id: [labels]}}")


def _label(item: Any, source: str, key: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping) and isinstance(item.get("label"), str):
        return item["label"]
    raise ValueError(
        f"{source}: image {key!r} has a label that is neither a string nor {{'label': ...}}: {item!r}"
    )
