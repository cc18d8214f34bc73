"""Removing items of a coordination: "a dog, a cat and a frisbee" minus the cat -> "a dog and a
frisbee", with the separators, shared words and agreement the kept items need."""

from __future__ import annotations

from typing import Any

from halluguard.correctors import grammar
from halluguard.correctors.rewriting.agreement import agree
from halluguard.correctors.rewriting.coordination import (
    conjunction,
    coordination_items,
    group_quantifiers,
    item_spans,
    shared_determiner,
    shared_predicate_start,
    shared_tail,
)
from halluguard.correctors.rewriting.phrases import SUBJECT_DEPS
from halluguard.correctors.rewriting.plan import Op, Plan, Removal, Replacement, end_of
from halluguard.correctors.words import PLURAL_NOUN_TAGS


def items_removable(plan: Plan, root: Any, items: list[Any], removed: set[int]) -> bool:
    """Clauses sharing a subject: the first goes alone only when the next kept one can take
    the subject ("The player is wearing a glove and is standing" - "wearing" -> "The player is
    standing"; "A dog sits and chews" - "sits" -> "A dog chews")."""
    first = items[0]
    if first.i not in removed or not first.tag_.startswith(("VB", "MD")):
        return True
    remaining = [item for item in items if item.i not in removed]
    if not remaining:
        return True
    kept = remaining[0]
    if any(c.dep_ in SUBJECT_DEPS for c in kept.children):
        return True
    return first.i not in plan.subject_items and shared_predicate_start(first, kept) is not None


def remove_items(plan: Plan, root: Any, removed: set[int], reason: str) -> None:
    """Plan the removal of the items ``removed`` (token indices) of the coordination at ``root``."""
    items = coordination_items(root)
    spans = item_spans(plan.doc, items)
    keep = [k for k, item in enumerate(items) if item.i not in removed]
    if not keep:
        return
    conj = conjunction(items)
    comma = ", "
    oxford = plan.text[spans[-2][1] : spans[-1][0]].lstrip().startswith(",") and len(items) > 2
    ops: list[Op] = []

    def why(start: int, end: int, reason: str = reason) -> str:
        return plan.with_losses(reason, start, end)

    # leading removed items; a determiner the first item shares with the next stays:
    # "The chairs and umbrellas" - chairs -> "The umbrellas"
    preconj = next(
        (c for c in items[0].children if c.dep_ == "preconj" and c.lower_ in ("both", "either", "neither")),
        None,
    )
    predicate_start = None
    if (
        keep[0] > 0
        and items[0].i not in plan.subject_items
        and not any(c.dep_ in SUBJECT_DEPS for c in items[keep[0]].children)
    ):
        predicate_start = shared_predicate_start(items[0], items[keep[0]])
    if keep[0] > 0 and predicate_start is not None:
        # "The player [is wearing a glove and] is standing": the subject stays
        ops.append(Removal(predicate_start, spans[keep[0]][0], why(predicate_start, spans[keep[0]][0])))
    elif keep[0] > 0:
        start = spans[0][0]
        if len(keep) == 1 and preconj is not None and preconj.i < items[0].left_edge.i + 2:
            start = min(start, preconj.idx)  # "Both the dog and the cat" - dog -> "The cat"
        shared = shared_determiner(items[0], items[keep[0]])
        if shared is not None:
            start = shared.idx + len(shared.text) + 1
            if shared.lower_ in ("a", "an"):
                first_word = plan.doc.char_span(spans[keep[0]][0], spans[keep[0]][1], alignment_mode="expand")
                article = grammar.match_case(shared.text, grammar.article_for(first_word[0].text))
                if article != shared.text:
                    a, b = shared.idx, shared.idx + len(shared.text)
                    ops.append(Replacement(a, b, article, why(a, b, "article"), with_removal=True))
        ops.append(Removal(start, spans[keep[0]][0], why(start, spans[keep[0]][0])))
    # trailing removed items; what the last one's trailing phrase says of the group stays
    if keep[-1] < len(items) - 1:
        end = spans[-1][1]
        tail = shared_tail(items[-1], [items[k] for k in keep])
        if tail is not None and not any(t.i in plan.removed_heads for t in tail.subtree):
            end = min(end, end_of(plan.doc[tail.left_edge.i - 1]))
        ops.append(Removal(spans[keep[-1]][1], end, why(spans[keep[-1]][1], end), keep_comma=True))
    if len(keep) == 1:
        # words for the whole group: "both the dog and the cat", "a bench and a can, both near"
        group = [preconj] if preconj is not None and keep[0] == 0 else []
        group += group_quantifiers(items[0])
        for word in group:
            end = word.idx + len(word.text) + len(word.whitespace_)
            ops.append(Removal(word.idx, end, why(word.idx, end, reason + " (one left)")))
    # separators between kept items
    n = len(keep)
    for j in range(n - 1):
        p, q = keep[j], keep[j + 1]
        old = plan.text[spans[p][1] : spans[q][0]]
        if j == n - 2:
            new = f", {conj} " if (oxford and n > 2) else f" {conj} "
            if q == p + 1 and old.strip(" ,") and (n > 2 or not old.lstrip().startswith(",")):
                continue  # already "a and b" / "a, b, and c"
        else:
            new = comma
        if q == p + 1 and (old == new or (j < n - 2 and old.strip() == ",")):
            continue
        a, b = spans[p][1], spans[q][0]
        # between items that were not neighbours, the separator stands where the removed items were
        ops.append(Replacement(a, b, new, why(a, b), with_removal=q != p + 1))
    plan.ops.extend(ops)
    if n == 1:
        agree(
            plan,
            root,
            plural=items[keep[0]].tag_ in PLURAL_NOUN_TAGS or not items[keep[0]].tag_.startswith("NN"),
        )
