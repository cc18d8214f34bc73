"""Coordinations: their items ("a dog, a cat and a frisbee"), each item's characters, the words
between them, and what the items share (a determiner, a subject, a trailing phrase)."""

from __future__ import annotations

from typing import Any

from halluguard.correctors.rewriting.phrases import place_phrases
from halluguard.correctors.words import NOUN_TAGS, PLURAL_NOUN_TAGS

#: what stands before a noun in its phrase ("a [big] [teddy] bear")
_NOUN_MODIFIER_DEPS = frozenset({"det", "amod", "compound", "nummod", "poss", "quantmod", "predet"})


def coordination_items(root: Any) -> list[Any]:
    """The conjuncts of the coordination headed by ``root`` (itself first), in text order."""
    items = [root]
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            if child.dep_ == "conj" or (
                child.dep_ == "appos"
                and child.tag_ in NOUN_TAGS
                and any(c.dep_ in ("conj", "cc") for c in child.children)
            ):
                items.append(child)
                stack.append(child)
    return sorted(items, key=lambda t: t.i)


def group_quantifiers(root: Any) -> list[Any]:
    """ "both"/"all" opening a modifier of a coordination ("a bench and a trash can, both located near
    the players"), which must go when one item is left."""
    doc = root.doc
    end = max(t.i for t in root.subtree) + 1
    if end < len(doc) and doc[end].text == ",":
        end += 1
    modifiers = list(root.children)
    if end < len(doc) and doc[end].head.left_edge.i == end:
        modifiers.append(doc[end].head)  # the parser often hangs it on the verb
    out = []
    for child in modifiers:
        if child.dep_ not in ("acl", "relcl", "amod", "appos", "advcl") or child.i < root.i:
            continue
        first = child.left_edge
        if first.lower_ in ("both", "all") and first.head.i == child.i and not list(first.children):
            out.append(first)
    return out


def shared_predicate_start(first: Any, kept: Any) -> int | None:
    """Where to start deleting the first of two predicates that share a subject, so that the
    subject stays and ``kept`` has a finite verb: the first's auxiliaries go when ``kept`` has its
    own or is finite ("is wearing a glove and is standing"), else they stay ("is wearing a glove
    and standing" -> "is standing"). ``None`` when that cannot be done."""
    if not first.tag_.startswith(("VB", "MD")) or not kept.tag_.startswith(("VB", "MD")):
        return None
    subjects = [c for c in first.children if c.dep_ in ("nsubj", "nsubjpass") and c.i < first.i]
    if not subjects:
        return None
    subject_end = max(t.i for t in subjects[0].subtree)
    between = [c for c in first.children if subject_end < c.i < first.i]
    if any(c.dep_ not in ("aux", "auxpass", "neg", "advmod") for c in between):
        return None
    auxiliaries = [c for c in between if c.dep_ in ("aux", "auxpass")]
    kept_finite = kept.tag_ in ("VBZ", "VBP", "VBD", "MD") or any(
        c.dep_ in ("aux", "auxpass") and c.i < kept.i for c in kept.children
    )
    if kept_finite:
        return between[0].idx if between else first.idx
    if auxiliaries and kept.tag_ in ("VBG", "VBN", "VB"):
        after = [c for c in between if c.i > auxiliaries[-1].i]
        return after[0].idx if after else first.idx
    return None


def _own_span(item: Any, items: list[Any]) -> tuple[int, int]:
    """Characters of one conjunct without the other conjuncts, conjunctions and list commas."""
    excluded: set[int] = set()
    item_ids = {t.i for t in items}
    first_other = None
    for child in item.children:
        if child.i in item_ids or child.dep_ in ("cc", "preconj"):
            excluded.update(t.i for t in child.subtree)
            if child.i > item.i and (first_other is None or child.i < first_other):
                first_other = child.i
    tokens = [
        t for t in item.subtree
        if t.i not in excluded and not (first_other is not None and t.i > first_other)
        and not (t.is_punct and t.head.i == item.i and t.i > item.i and first_other is not None
                 and t.i < first_other and _only_punct_until(t, first_other))
    ]  # fmt: skip
    while tokens and (tokens[-1].is_punct or tokens[-1].is_space or tokens[-1].dep_ == "cc"):
        tokens.pop()  # a conjunction hung inside it ("a girl with a kite [and] a dog")
    while tokens and (tokens[0].is_punct or tokens[0].is_space):
        tokens.pop(0)
    if not tokens:
        return item.idx, item.idx + len(item.text)
    return tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)


def _only_punct_until(token: Any, stop: int) -> bool:
    doc = token.doc
    return all(doc[i].is_punct or doc[i].is_space or doc[i].dep_ == "cc" for i in range(token.i, stop))


def shared_determiner(first: Any, kept: Any) -> Any | None:
    """The determiner of the first conjunct when the kept one has none of its own and it fits it."""
    if not (first.tag_ in NOUN_TAGS and kept.tag_ in NOUN_TAGS):
        return None
    if any(c.dep_ in ("det", "poss", "nummod") for c in kept.children):
        return None
    dets = [c for c in first.children if c.dep_ in ("det", "poss") and c.i == first.left_edge.i]
    if not dets:
        return None
    det = dets[0]
    if det.lower_ in ("a", "an", "this", "that", "each", "every", "one") and kept.tag_ in PLURAL_NOUN_TAGS:
        return None
    if det.lower_ in ("these", "those", "both") and kept.tag_ not in PLURAL_NOUN_TAGS:
        return None
    return det


def item_spans(doc: Any, items: list[Any]) -> list[tuple[int, int]]:
    """Character spans of the conjuncts; words between two conjuncts that are neither
    punctuation nor the conjunction ("cups and bowls placed on the counter, as well as a toaster")
    go with the conjunct before them, so that separators are only commas and conjunctions."""
    spans = [_own_span(item, items) for item in items]
    for k in range(len(spans) - 1):
        between = [t for t in doc if spans[k][1] <= t.idx and t.idx + len(t.text) <= spans[k + 1][0]]
        content = [t for t in between if not (t.is_punct or t.is_space or _in_conjunction(t))]
        if content:
            last = content[-1]
            spans[k] = (spans[k][0], last.idx + len(last.text))
    return spans


def _in_conjunction(token: Any) -> bool:
    node = token
    for _ in range(3):
        if node.dep_ in ("cc", "preconj"):
            return True
        node = node.head
    return False


def conjunction(items: list[Any]) -> str:
    """The coordinating conjunction of a group ("and", "or", "as well as")."""
    ccs = [c for item in items for c in item.children if c.dep_ == "cc"]
    if not ccs:
        return "and"
    last = max(ccs, key=lambda t: t.i)
    return " ".join(t.text for t in last.subtree)


def loose_item(noun: Any) -> tuple[int, int] | None:
    """The characters of ``noun``'s phrase and the "and"/"or" that joins it to the noun before it
    (or after it), judged from the words alone, for lists the parser did not see ("a skier with
    skis and a backpack stands", parsed with two subjects); ``None`` when it is not so joined."""
    doc = noun.doc
    if noun.tag_ not in NOUN_TAGS or any(c.i > noun.i for c in noun.children):
        return None
    first = noun.i
    while first > 0 and doc[first - 1].head.i == noun.i and doc[first - 1].dep_ in _NOUN_MODIFIER_DEPS:
        first -= 1
    end = noun.idx + len(noun.text)
    joint = first - 1
    if joint >= 1 and doc[joint].lower_ in ("and", "or"):
        before = joint - 1 - (doc[joint - 1].text == ",")
        if before >= 0 and doc[before].tag_ in NOUN_TAGS:
            return doc[before].idx + len(doc[before].text), end
    after = noun.i + 1
    joins_next = after + 1 < len(doc) and doc[after].lower_ in ("and", "or")
    if joins_next and doc[after + 1].dep_ in _NOUN_MODIFIER_DEPS:
        if first > 0 and doc[first - 1].dep_ == "prep":
            return doc[first].idx, doc[after + 1].idx
    return None


def shared_tail(last: Any, kept: list[Any]) -> Any | None:
    """The phrase after the last conjunct ``last`` that the parser hung on it but that speaks of the
    whole group ("a cat and a dog [sleeping on the couch]", "two cats and a dog [on a bed]"): its
    first participle clause or place phrase, when no kept conjunct has a phrase after it of its own."""
    if last.tag_ not in NOUN_TAGS:
        return None
    for item in kept:
        if any(c.i > item.i and c.dep_ in ("acl", "relcl", "prep") for c in item.children):
            return None
    tails = [
        c for c in last.children
        if c.i > last.i and (c.dep_ == "acl" and c.tag_ in ("VBG", "VBN") or c in place_phrases(last))
    ]  # fmt: skip
    if not tails:
        return None
    tail = min(tails, key=lambda t: t.i)
    words = " " + " ".join(t.lower_ for t in tail.subtree) + " "
    if len(kept) == 1 and any(f" {w} " in words for w in _RECIPROCAL):
        return None  # "a sink and a toilet [situated next to each other]" needs two
    return tail


#: phrases that need a group of two or more
_RECIPROCAL = ("each other", "one another", "together", "side by side", "between", "among", "both")
