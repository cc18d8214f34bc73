"""Hedging an object nobody could vouch for: "There may be a dog", "A dog may be sleeping",
"possibly a cat" in a list, "what may be a dog" elsewhere."""

from __future__ import annotations

from halluguard.correctors.mentions import group_root
from halluguard.correctors.rewriting.coordination import coordination_items, item_spans
from halluguard.correctors.rewriting.plan import Insertion, Plan, Replacement, end_of
from halluguard.correctors.words import FINITE_BE
from halluguard.records import Claim


def hedge_claim(plan: Plan, claim: Claim) -> None:
    """Plan the hedge of one object claim."""
    head = plan.head_of(claim)
    if head is None:
        return
    reason = f"suspicious: {claim.text} (hedged)"
    root = group_root(head)
    items = coordination_items(root)
    if len(items) > 1:
        item = head
        while item not in items:
            item = item.head
        start = item_spans(plan.doc, items)[items.index(item)][0]
        plan.ops.append(Insertion(start, "possibly ", reason))
        return
    verb = root.head
    if root.dep_ == "attr" and any(c.dep_ == "expl" for c in verb.children) and verb.lower_ in FINITE_BE:
        new = "may be" if verb.lower_ in ("is", "are", "'s", "'re") else "may have been"
        if verb.lower_ in ("'s", "'re"):
            new = " " + new
        plan.ops.append(Replacement(verb.idx, end_of(verb), new, reason))
        return
    if root.dep_ in ("nsubj", "nsubjpass"):
        finite = [c for c in verb.children if c.dep_ in ("aux", "auxpass") and c.lower_ in FINITE_BE]
        if verb.lower_ in FINITE_BE:
            finite = [verb]
        if finite and finite[0].lower_ in ("is", "are", "was", "were"):
            be = finite[0]
            new = "may be" if be.lower_ in ("is", "are") else "may have been"
            plan.ops.append(Replacement(be.idx, end_of(be), new, reason))
            return
    start = root.left_edge.idx
    first = root.left_edge
    if plan.at_sentence_start(start):
        lowered = first.text if first.tag_ in ("NNP", "NNPS") else first.text[:1].lower() + first.text[1:]
        plan.ops.append(Replacement(start, end_of(first), "What may be " + lowered, reason))
    else:
        plan.ops.append(Insertion(start, "what may be ", reason))
