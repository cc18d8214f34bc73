"""Stage 3: check each claim against what the detector saw, and keep the evidence on the claim.

>>> from halluguard.records import Claim, Detection, Detections
>>> seen = Detections([Detection("dog", 0.9, (10, 10, 50, 50))], (100, 100), frozenset({"dog", "cat"}))
>>> claims = [Claim("a dog", 0, 5, "object", "dog"), Claim("a cat", 10, 15, "object", "cat"),
...           Claim("a zebra", 20, 27, "object", "zebra"), Claim("two dogs", 30, 38, "count", "dog", count=2)]
>>> verify(claims, seen, None)
>>> [(c.label, c.verdict) for c in claims]
[('dog', 'supported'), ('cat', 'contradicted'), ('zebra', 'unverifiable'), ('dog', 'contradicted')]
>>> claims[3].evidence["count"]
1

Verdicts
--------
A detector that does not know a class never contradicts it: such claims are ``unverifiable``.
Boxes scoring at least ``threshold`` count as seen. Boxes scoring in ``[min_score, threshold)``
are too weak to support a claim and too strong to let it be contradicted: they make it
``unverifiable``. When the claim's object (its ``label``) is known and not seen at all, the claim
is ``contradicted`` whatever its kind ("a red car" when there is no car), with ``evidence["count"]
= 0``. Otherwise, by kind:

- ``object``: ``supported`` (``evidence``: ``count``, ``boxes``, ``scores``).
- ``count``: the number of boxes against ``count`` (exactly) or ``count_min`` (at least);
  ``evidence["count"]`` is the number seen, what a rewriter should say instead. Weak boxes that
  could make up the difference make it ``unverifiable``. Annotations that list each label once per
  image (presence only) cannot check counts.
- ``attribute``: colours only (:data:`~halluguard.correctors.colours.COLOURS` and synonyms; other
  attributes are ``unverifiable``), read from the pixels in the central part of each box (see
  :mod:`halluguard.correctors.colours`). ``supported`` when the colour covers at least
  ``colour_support`` (20 %) of some box; ``contradicted`` when it covers under 5 % of every box and
  the colours easily confused with it (``NEIGHBOURS``) under 25 %; ``evidence["attribute"]`` is the
  dominant colour of the best box, ``evidence["colours"]`` its main shares.
- ``relation``: ``label`` (the subject) against ``target``, over every pair of boxes:
  ``supported`` when some pair satisfies the relation, ``contradicted`` when every pair clearly
  violates it, else ``unverifiable``; ``evidence["relation"]`` is the direction that describes the
  closest pair (left of / right of / above / below). Geometry needs boxes and an image-plane
  reading of each relation, defined in :func:`relation_holds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from halluguard.correctors import colours as _colours
from halluguard.detectors.base import counts_instances, has_boxes
from halluguard.images import ImageRef
from halluguard.records import Claim, Detection, Detections

#: the spatial relations the claim extractor emits, each defined in :func:`relation_holds`
RELATIONS: tuple[str, ...] = (
    "left of",
    "right of",
    "above",
    "below",
    "on",
    "under",
    "next to",
    "in front of",
    "behind",
)
DEFAULT_THRESHOLD = 0.25
DEFAULT_MIN_SCORE = 0.1
#: a centre offset of a quarter of the boxes' mean size separates "left of" from "aligned"
MARGIN = 0.25
COLOUR_SUPPORT = 0.2
COLOUR_ABSENT = 0.05
COLOUR_NEIGHBOURS_ABSENT = 0.25
MAX_BOXES = 5

Box = tuple[float, float, float, float]


def verify(
    claims: Sequence[Claim],
    detections: Detections,
    image: ImageRef | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_score: float = DEFAULT_MIN_SCORE,
    colour_support: float = COLOUR_SUPPORT,
) -> None:
    """Set ``verdict`` and ``evidence`` of each claim in place (see the module doc).

    ``image`` gives the pixels for colours (``None``, or an image without a file: colours stay
    unverifiable). ``evidence`` holds plain JSON data (lists, floats, strings).
    """
    checker = _Checker(detections, image, threshold, min(min_score, threshold), colour_support)
    for claim in claims:
        verdict, evidence = checker.check(claim)
        claim.verdict = verdict  # type: ignore[assignment]
        claim.evidence = evidence


# -- geometry --------------------------------------------------------------------------------


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0


def _size(b: Box) -> tuple[float, float]:
    return max(b[2] - b[0], 1e-6), max(b[3] - b[1], 1e-6)


def _overlap_1d(a1: float, a2: float, b1: float, b2: float) -> float:
    return max(0.0, min(a2, b2) - max(a1, b1))


def offsets(s: Box, t: Box) -> tuple[float, float]:
    """``(dx, dy)``: how far the subject's centre is left of / above the target's, in units of
    the two boxes' mean width / height (positive: subject left of / above the target)."""
    (sx, sy), (tx, ty) = _centre(s), _centre(t)
    (sw, sh), (tw, th) = _size(s), _size(t)
    return (tx - sx) / ((sw + tw) / 2.0), (ty - sy) / ((sh + th) / 2.0)


def describe(s: Box, t: Box) -> str:
    """The direction (left of / right of / above / below) that best describes ``s`` against ``t``."""
    dx, dy = offsets(s, t)
    if abs(dx) >= abs(dy):
        return "left of" if dx > 0 else "right of"
    return "above" if dy > 0 else "below"


def relation_holds(relation: str, s: Box, t: Box) -> int:
    """+1: the subject box ``s`` is ``relation`` the target box ``t``; -1: clearly not; 0: can't tell.

    Boxes are ``(x1, y1, x2, y2)`` in image pixels, y pointing down. With ``dx``, ``dy`` from
    :func:`offsets` and ``M`` = :data:`MARGIN` (0.25):

    - ``left of`` / ``right of``: ``dx >= M`` / ``dx <= -M`` holds; the opposite sign beyond ``M``
      violates; in between (centres aligned) can't tell. ``above`` / ``below``: the same with ``dy``.
    - ``on``: the boxes overlap horizontally by at least half the narrower one, the subject's centre
      is higher than the target's and its bottom reaches the target's top (within 10 % of the
      target's height) - a cup on a table, a cat on a bed seen from above. Violated when they do not
      overlap horizontally at all, or the subject lies entirely below the target.
    - ``under``: horizontal overlap of at least half the narrower box, the subject's centre lower than
      the target's and its bottom at or below the target's bottom (within 10 %) - a dog under a
      table. Violated without horizontal overlap or when the subject lies entirely above the target.
    - ``next to``: the gap between the boxes (0 when they touch or overlap) is at most half their
      mean side; violated when it exceeds twice their mean side.
    - ``in front of`` / ``behind``: the boxes overlap and the subject's bottom edge is lower / higher
      in the picture than the target's by 5 % of the taller box (on a ground plane, nearer things
      reach lower). A 2-D box is weak evidence of depth, so these never return -1.
    """
    sw, sh = _size(s)
    tw, th = _size(t)
    (_, scy), (_, tcy) = _centre(s), _centre(t)
    if relation in ("left of", "right of", "above", "below"):
        dx, dy = offsets(s, t)
        value = {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[relation]
        return 1 if value >= MARGIN else (-1 if value <= -MARGIN else 0)
    h_overlap = _overlap_1d(s[0], s[2], t[0], t[2]) / min(sw, tw)
    if relation == "on":
        if h_overlap >= 0.5 and scy < tcy and s[3] >= t[1] - 0.1 * th:
            return 1
        return -1 if h_overlap == 0.0 or s[1] >= t[3] else 0
    if relation == "under":
        if h_overlap >= 0.5 and scy > tcy and s[3] >= t[3] - 0.1 * th:
            return 1
        return -1 if h_overlap == 0.0 or s[3] <= t[1] else 0
    if relation == "next to":
        gap_x = max(0.0, max(s[0], t[0]) - min(s[2], t[2]))
        gap_y = max(0.0, max(s[1], t[1]) - min(s[3], t[3]))
        scale = (sw + tw + sh + th) / 4.0
        gap = max(gap_x, gap_y)
        return 1 if gap <= 0.5 * scale else (-1 if gap > 2.0 * scale else 0)
    if relation in ("in front of", "behind"):
        inter = _overlap_1d(s[0], s[2], t[0], t[2]) * _overlap_1d(s[1], s[3], t[1], t[3])
        if inter <= 0:
            return 0
        lower = s[3] - t[3]
        margin = 0.05 * max(sh, th)
        if relation == "in front of":
            return 1 if lower > margin else 0
        return 1 if lower < -margin else 0
    raise ValueError(f"unknown relation {relation!r}; known: {', '.join(RELATIONS)}")


# -- the checker -----------------------------------------------------------------------------


def _box(d: Detection) -> list[float]:
    return [round(float(v), 1) for v in d.box]


def _score(d: Detection) -> float:
    return round(float(d.score), 4)


class _Checker:
    def __init__(
        self,
        detections: Detections,
        image: ImageRef | None,
        threshold: float,
        min_score: float,
        colour_support: float,
    ):
        self.detections = detections
        self.image = image
        self.threshold = threshold
        self.min_score = min_score
        self.colour_support = colour_support
        self.boxes = has_boxes(detections)
        self.instances = counts_instances(detections)
        self._fractions: dict[Box, dict[str, float]] = {}

    # seen / weak boxes of a label, best first
    def seen(self, label: str) -> tuple[list[Detection], list[Detection]]:
        found = sorted(self.detections.of(label), key=lambda d: -d.score)
        strong = [d for d in found if d.score >= self.threshold]
        weak = [d for d in found if self.min_score <= d.score < self.threshold]
        return strong, weak

    def _found(self, strong: list[Detection]) -> dict[str, Any]:
        evidence: dict[str, Any] = {"scores": [_score(d) for d in strong]}
        if self.instances:
            evidence["count"] = len(strong)
        if self.boxes:
            evidence["boxes"] = [_box(d) for d in strong]
        return evidence

    def presence(self, label: str, role: str = "") -> tuple[str, dict[str, Any]] | None:
        """The verdict when ``label`` is unknown, weak or absent; ``None`` when it is seen."""
        if not label or not self.detections.knows(label):
            return "unverifiable", {"reason": f"the detector does not know {label!r}"}
        strong, weak = self.seen(label)
        if strong:
            return None
        if weak:
            return "unverifiable", {
                "reason": f"only weak detections of {label!r} (best {weak[0].score:.2f} < {self.threshold})",
                "scores": [_score(d) for d in weak],
            }
        evidence: dict[str, Any] = {"count": 0, "reason": f"no {label} found (threshold {self.threshold})"}
        if role:
            evidence["missing"] = role
        return "contradicted", evidence

    def check(self, claim: Claim) -> tuple[str, dict[str, Any]]:
        absent = self.presence(claim.label)
        if absent is not None:
            return absent
        if claim.kind == "object":
            return "supported", self._found(self.seen(claim.label)[0])
        if claim.kind == "count":
            return self.count(claim)
        if claim.kind == "attribute":
            return self.attribute(claim)
        if claim.kind == "relation":
            return self.relation(claim)
        return "unverifiable", {"reason": f"unknown claim kind {claim.kind!r}"}

    def count(self, claim: Claim) -> tuple[str, dict[str, Any]]:
        strong, weak = self.seen(claim.label)
        evidence = self._found(strong)
        if not self.instances:
            evidence["reason"] = "the annotations list labels, not instances: counts cannot be checked"
            return "unverifiable", evidence
        n, extra = len(strong), len(weak)
        if weak:
            evidence["weak_scores"] = [_score(d) for d in weak]
        if claim.count is not None:
            wanted, exact = claim.count, True
        elif claim.count_min is not None:
            wanted, exact = claim.count_min, False
        else:
            return "supported", evidence  # a count claim with no number: presence
        if (n == wanted) if exact else (n >= wanted):
            return "supported", evidence
        if (n < wanted <= n + extra) if exact else (n + extra >= wanted):
            evidence["reason"] = f"{n} seen, {extra} more weakly"
            return "unverifiable", evidence
        evidence["reason"] = f"{n} {claim.label} seen, {'' if exact else 'at least '}{wanted} claimed"
        return "contradicted", evidence

    def _pixels(self) -> Any:
        if self.image is None or self.image.path is None:
            return None
        return self.image.pil()

    def fractions(self, pil: Any, d: Detection) -> dict[str, float]:
        if d.box not in self._fractions:
            self._fractions[d.box] = _colours.colour_fractions(pil, d.box)
        return self._fractions[d.box]

    def attribute(self, claim: Claim) -> tuple[str, dict[str, Any]]:
        colour = _colours.canonical_colour(claim.attribute)
        if colour is None:
            return "unverifiable", {
                "reason": f"attribute {claim.attribute!r} is not a colour halluguard checks"
            }
        if not self.boxes:
            return "unverifiable", {
                "reason": "no boxes (the annotations list labels only): colours cannot be read"
            }
        pil = self._pixels()
        if pil is None:
            return "unverifiable", {"reason": "no image pixels to read the colour from"}
        strong = self.seen(claim.label)[0][:MAX_BOXES]
        histograms = [(d, self.fractions(pil, d)) for d in strong]
        histograms = [(d, f) for d, f in histograms if f]
        if not histograms:
            return "unverifiable", {"reason": "the boxes hold no pixels"}
        neighbours = _colours.NEIGHBOURS.get(colour, frozenset())
        best_d, best_f = max(histograms, key=lambda item: item[1].get(colour, 0.0))
        share = best_f.get(colour, 0.0)
        shown = best_d if share >= self.colour_support else histograms[0][0]
        shown_f = next(f for d, f in histograms if d is shown)
        evidence: dict[str, Any] = {
            "attribute": _colours.dominant(shown_f),
            "colours": {k: round(v, 3) for k, v in sorted(shown_f.items(), key=lambda kv: -kv[1])[:3]},
            "box": _box(shown),
            "score": _score(shown),
        }
        if share >= self.colour_support:
            evidence["attribute"] = colour
            return "supported", evidence
        if all(
            f.get(colour, 0.0) < COLOUR_ABSENT
            and sum(f.get(n, 0.0) for n in neighbours) < COLOUR_NEIGHBOURS_ABSENT
            for _, f in histograms
        ):
            evidence["reason"] = f"{colour} covers {share:.0%} of the best box"
            return "contradicted", evidence
        evidence["reason"] = f"{colour} covers {share:.0%} of the best box: not enough to tell"
        return "unverifiable", evidence

    def relation(self, claim: Claim) -> tuple[str, dict[str, Any]]:
        relation = (claim.relation or "").strip().lower()
        if relation not in RELATIONS:
            return "unverifiable", {"reason": f"relation {claim.relation!r} is not one halluguard checks"}
        if not claim.target:
            return "unverifiable", {"reason": "the relation names no target"}
        absent = self.presence(claim.target, role="target")
        if absent is not None:
            return absent
        if not self.boxes:
            return "unverifiable", {
                "reason": "no boxes (the annotations list labels only): relations cannot be read"
            }
        subjects = self.seen(claim.label)[0][:MAX_BOXES]
        targets = self.seen(claim.target)[0][:MAX_BOXES]
        pairs = [(s, t) for s in subjects for t in targets if s is not t]
        if not pairs:
            return "unverifiable", {"reason": f"needs two {claim.label} boxes, found one"}
        judged = [(relation_holds(relation, s.box, t.box), s, t) for s, t in pairs]

        def distance(item: tuple[int, Detection, Detection]) -> float:
            (sx, sy), (tx, ty) = _centre(item[1].box), _centre(item[2].box)
            return (sx - tx) ** 2 + (sy - ty) ** 2

        holding = [item for item in judged if item[0] == 1]
        if holding:
            _, s, t = min(holding, key=distance)
            return "supported", {"relation": relation, "subject_box": _box(s), "target_box": _box(t)}
        _, s, t = min(judged, key=distance)
        evidence = {"relation": describe(s.box, t.box), "subject_box": _box(s), "target_box": _box(t)}
        if all(item[0] == -1 for item in judged):
            evidence["reason"] = f"no {claim.label} is {relation} a {claim.target}"
            return "contradicted", evidence
        evidence["reason"] = f"the boxes do not tell whether a {claim.label} is {relation} a {claim.target}"
        return "unverifiable", evidence


__all__ = [
    "DEFAULT_MIN_SCORE",
    "DEFAULT_THRESHOLD",
    "MARGIN",
    "RELATIONS",
    "describe",
    "offsets",
    "relation_holds",
    "verify",
]
