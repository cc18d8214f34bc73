"""The typed records that flow through halluguard.

An :class:`Answer` is one input line; the corrector turns it into :class:`Claim` s, a detector
gives :class:`Detections` for its image, verification sets each claim's ``verdict``, and the
rewriter produces :class:`Edit` s. Everything converts to plain JSON with ``to_json()``.

>>> claim = Claim(text="two dogs", start=10, end=18, kind="count", label="dog", count=2)
>>> claim.to_json()["kind"], claim.verdict
('count', 'unverifiable')
>>> Detection("dog", 0.9, (1.0, 2.0, 30.0, 40.0)).to_json()
{'label': 'dog', 'score': 0.9, 'box': [1.0, 2.0, 30.0, 40.0]}
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

ClaimKind = Literal["object", "count", "attribute", "relation"]
Verdict = Literal["supported", "contradicted", "unverifiable"]
CLAIM_KINDS: tuple[str, ...] = ("object", "count", "attribute", "relation")
VERDICTS: tuple[str, ...] = ("supported", "contradicted", "unverifiable")


class RecordError(Exception):
    """A problem with one record: it goes to the errors file and the run goes on.

    ``field`` names the offending field (``None`` for the line as a whole).
    """

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class Detection:
    """One box: ``box`` is ``(x1, y1, x2, y2)`` in pixels of the original image."""

    label: str
    score: float
    box: tuple[float, float, float, float]

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(float(self.score), 4),
                "box": [round(float(v), 1) for v in self.box]}


@dataclass
class Detections:
    """What a detector saw in one image.

    ``vocabulary`` is the set of labels the detector can see at all; ``None`` means open
    vocabulary. A label outside the vocabulary can never be contradicted.
    """

    detections: list[Detection]
    image_size: tuple[int, int] | None = None  # (width, height)
    vocabulary: frozenset[str] | None = None

    def of(self, label: str) -> list[Detection]:
        return [d for d in self.detections if d.label == label]

    def knows(self, label: str) -> bool:
        return self.vocabulary is None or label in self.vocabulary


@dataclass
class Claim:
    """One checkable statement in an answer, with character offsets into the original text.

    - ``object``: "a dog" claims a dog is present (``label`` = detector class).
    - ``count``: "two dogs" (``count`` = 2; ``count_min`` for "several").
    - ``attribute``: "a red car" (``attribute`` = "red").
    - ``relation``: "a cup to the left of the laptop" (``relation`` = "left of", ``target`` = "laptop").
    """

    text: str
    start: int
    end: int
    kind: ClaimKind
    label: str
    verdict: Verdict = "unverifiable"
    evidence: dict[str, Any] = field(default_factory=dict)
    count: int | None = None
    count_min: int | None = None
    attribute: str | None = None
    relation: str | None = None
    target: str | None = None
    suspicion: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values: ``None`` and empty ones left out, ``verdict`` and ``evidence`` always
        (what :func:`dataclasses.asdict` gives, without its deep copy of every value)."""
        out = {}
        for name in _CLAIM_FIELDS:
            value = getattr(self, name)
            if value is not None and value != {} or name in ("verdict", "evidence"):
                out[name] = plain(value) if name == "evidence" else value  # the others are str/int/float
        return out


_CLAIM_FIELDS = tuple(f.name for f in fields(Claim))


_ATOMS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """``value`` with dataclasses turned into dicts, recursively, as :func:`dataclasses.asdict` does."""
    kind = type(value)
    if kind in _ATOMS or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if kind in (list, tuple):
        if all(type(v) in _ATOMS for v in value):
            return kind(value)  # a box, a list of scores: a shallow copy is the whole conversion
        return kind(plain(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return copy.deepcopy(value)


@dataclass
class Edit:
    """A replacement of ``original[start:end]`` (``before``) by ``after``, with its reason."""

    start: int
    end: int
    before: str
    after: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """One input record, parsed. ``record`` is the original JSON object, carried through untouched."""

    text: str
    record: dict[str, Any]
    line: int
    id: Any = None
    image: Path | None = None
    image_id: Any = None
    question: str | None = None
    logprobs: list[Any] | None = None

    @property
    def image_key(self) -> str | None:
        """What identifies this answer's image for annotation backends: the path's name, else image_id."""
        if self.image_id is not None:
            return str(self.image_id)
        return self.image.name if self.image is not None else None


@dataclass
class Correction:
    """The corrector's result for one answer."""

    corrected: str
    claims: list[Claim] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "corrected": self.corrected,
            "claims": [c.to_json() for c in self.claims],
            "edits": [e.to_json() for e in self.edits],
        }
