"""Removing an object with the least damage: the list item, the shared predicate, the optional
phrase or clause that holds it, and only when nothing smaller is grammatical the sentence (see
:mod:`halluguard.correctors.rewrite` for the order, with examples)."""

from __future__ import annotations

from typing import Any

from halluguard.correctors.mentions import Mention, group_root, lower_words
from halluguard.correctors.pronouns import antecedent_of
from halluguard.correctors.rewriting.coordination import coordination_items, loose_item
from halluguard.correctors.rewriting.items import items_removable, remove_items
from halluguard.correctors.rewriting.phrases import (
    CONTAINER_NOUNS,
    NEEDS_OF,
    OBJECT_OPTIONAL_VERBS,
    OPTIONAL_DEPS,
    SUBJECT_DEPS,
    is_part_of,
    is_predicate,
    is_purpose,
    place_tail,
    preposition_top,
    span_chars,
    strip_span,
)
from halluguard.correctors.rewriting.plan import Plan, Removal
from halluguard.correctors.rewriting.promotion import promote
from halluguard.correctors.words import PRONOUNS


def remove_nodes(plan: Plan, nodes: list[tuple[Any, str]]) -> None:
    """Plan the removal of each ``(token, reason)``: promote what it holds, or remove the smallest
    grammatical unit around it (:func:`climb`); list items are gathered per coordination and
    removed together, the whole group when nothing grammatical is left of it."""
    pending = [(token, reason, False) for token, reason in nodes]
    plan.removed_heads.update(token.i for token, _ in nodes)
    while pending:
        token, reason, whole = pending.pop(0)
        if not whole and promote(plan, token, reason):
            continue
        decision = climb(token, whole)
        kind = decision[0]
        if kind == "item":
            root, item = decision[1], decision[2]
            if any(c.dep_ in SUBJECT_DEPS and token in c.subtree for c in item.children):
                plan.subject_items.add(item.i)
            removed = plan.items.setdefault(root.i, set())
            removed.add(item.i)
            plan.item_reasons.setdefault(root.i, []).append(reason)
            items = coordination_items(root)
            if len(removed) == len(items) or not items_removable(plan, root, items, removed):
                del plan.items[root.i]
                reasons = plan.item_reasons.pop(root.i)
                pending.append((root, "; ".join(reasons), True))
        elif kind == "unit":
            start, end = span_chars(decision[1])
            tail = place_tail(decision[1], token)
            if tail is not None and not any(t.i in plan.removed_heads for t in tail.subtree):
                end = tail.left_edge.idx  # "parked [next to a meter ]on a quiet street"
            plan.ops.append(Removal(start, end, plan.with_losses(reason, start, end)))
        else:
            start, end = sentence_range(plan, decision[1])
            loose = loose_item(token)
            if loose is not None and any(start <= c.start and c.end <= end for c in plan.protected):
                # a list the parser did not see: "a skier with skis[ and a backpack] stands"
                plan.ops.append(Removal(*loose, plan.with_losses(reason, *loose)))
                continue
            plan.ops.append(Removal(start, end, plan.with_losses(reason + " (sentence)", start, end)))
    for root_i, removed in plan.items.items():
        if plan.emitted.get(root_i, (None,))[0] == frozenset(removed):
            continue
        stale = plan.emitted.get(root_i, (None, []))[1]  # a later pass removed more items
        plan.ops = [op for op in plan.ops if all(op is not old for old in stale)]
        before = len(plan.ops)
        remove_items(plan, plan.doc[root_i], removed, "; ".join(plan.item_reasons[root_i]))
        plan.emitted[root_i] = (frozenset(removed), plan.ops[before:])


def dangling_pronouns(plan: Plan) -> list[tuple[Any, str]]:
    """Pronouns whose antecedent was just removed ("A cup is on the table. It is red.")."""
    deleted = plan.removed_spans()
    mentions: list[Mention] = []
    gone: set[int] = set()
    for claim in plan.claims:
        if claim.kind != "object":
            continue
        mention = plan.mention_of(claim)
        if mention is None:
            continue
        mention.subject = group_root(plan.doc[mention.last]).dep_ in ("nsubj", "nsubjpass", "attr")
        mentions.append(mention)
        if mention.last in plan.removed_heads or any(a <= claim.start and claim.end <= b for a, b in deleted):
            gone.add(len(mentions) - 1)
    if not gone:
        return []
    out = []
    pronouns = (plan.doc[i] for i, word in enumerate(lower_words(plan.doc)[0]) if word in PRONOUNS)
    for token in pronouns:
        if any(a <= token.idx < b for a, b in deleted):
            continue
        antecedent = antecedent_of(token, mentions)
        if antecedent is not None and mentions.index(antecedent) in gone:
            node = token.head if token.dep_ == "poss" else token
            out.append((node, f"refers to a removed object: {token.text}"))
    return out


def climb(node: Any, whole_group: bool = False) -> tuple[Any, ...]:
    """Where removing ``node`` is grammatical: ``("item", root, item)``, ``("unit", token)`` or
    ``("sentence", token)``."""
    for _ in range(64):
        root = group_root(node)
        if not whole_group:
            items = coordination_items(root)
            if len(items) > 1:
                item = node
                while item not in items and item.i != root.i:
                    item = item.head
                return ("item", root, item)
        whole_group = False
        node = root
        dep = node.dep_
        if dep == "ROOT" or node.head.i == node.i:
            return ("sentence", node)
        if dep == "pobj":
            top = preposition_top(node)
            if top.lower_ == "of" and top.head.lower_ not in CONTAINER_NOUNS:
                node = top.head  # "a slice of pizza", "the presence of a dog": the noun phrase goes
                continue
            if top.dep_ in OPTIONAL_DEPS and not is_predicate(top):
                return ("unit", top)
            if top.i != node.head.i and is_part_of(node.head):
                # the clause needs its place: "is positioned in the middle of the bench" keeps
                # "in the middle"
                return ("unit", node.head)
            node = top.head
            continue
        if dep == "prep" and node.lower_ == "of" and node.head.lower_ in NEEDS_OF:
            node = node.head
            continue
        if dep in OPTIONAL_DEPS and not (dep in ("prep", "advmod", "agent") and is_predicate(node)):
            return ("unit", node)
        if dep == "xcomp" and is_purpose(node):
            return ("unit", node)
        if dep == "dobj" and node.head.lower_ in OBJECT_OPTIONAL_VERBS:
            return ("unit", node)
        node = node.head
    return ("sentence", node)


def sentence_range(plan: Plan, token: Any) -> tuple[int, int]:
    """The characters to delete to remove ``token``'s sentence, with one side's whitespace."""
    sentences = [s for s in plan.doc.sents if s.text.strip()]
    sent = token.sent
    trimmed = [(strip_span(s)) for s in sentences]
    start, end = strip_span(sent)
    later = [s for s, _ in trimmed if s >= end]
    earlier = [e for _, e in trimmed if e <= start]
    after = plan.text[end : later[0]] if later else ""
    before = plan.text[earlier[-1] : start] if earlier else ""
    # keep paragraph breaks: the last sentence of a paragraph takes the space before it
    if later and ("\n" not in after or "\n" in before or not earlier):
        return start, later[0]
    return (earlier[-1] if earlier else start), end
