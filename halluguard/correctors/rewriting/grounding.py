"""Grounding, Woodpecker style: the boxes of the first supported mention of each label after it
("a dog [12, 30, 200, 180]": pixels, rounded; several boxes separated by ";")."""

from __future__ import annotations

from halluguard.correctors.rewriting.plan import Insertion, Plan
from halluguard.correctors.words import PLURAL_NOUN_TAGS


def ground(plan: Plan) -> None:
    """Plan the boxes' insertions (all of a plural mention's boxes, the best one of a singular's)."""
    seen: set[str] = set()
    for claim in plan.claims:
        if claim.kind != "object" or claim.verdict != "supported" or claim.label in seen:
            continue
        boxes = claim.evidence.get("boxes") if isinstance(claim.evidence, dict) else None
        if not boxes:
            continue
        scores = claim.evidence.get("scores") or [0.0] * len(boxes)
        ranked = [b for _, b in sorted(zip(scores, boxes), key=lambda sb: -float(sb[0]))]
        head = plan.head_of(claim)
        plural = head is not None and head.tag_ in PLURAL_NOUN_TAGS
        chosen = ranked if plural else ranked[:1]
        text = "; ".join(", ".join(str(round(float(v))) for v in box) for box in chosen)
        seen.add(claim.label)
        plan.ops.append(Insertion(claim.end, f" [{text}]", f"grounding: {claim.label}"))
