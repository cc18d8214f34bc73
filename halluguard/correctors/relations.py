"""Relation claims: "a cup to the left of the laptop", "the cat is on the bed", "a dog lying under a
table", "there is a cup next to it"."""

from __future__ import annotations

from typing import Any

from halluguard.correctors.mentions import Mention
from halluguard.correctors.pronouns import antecedent_of
from halluguard.correctors.words import NOUN_TAGS, PRONOUNS, RELATION_PREPOSITIONS
from halluguard.records import Claim

#: relative pronouns: as a relative clause's subject they stand for the noun the clause modifies
_RELATIVE = frozenset({"that", "which", "who", "whom"})


def relation_phrase(pobj: Any) -> tuple[str, Any] | None:
    """``(relation, first token)`` when ``pobj`` is the object of a spatial preposition.

    Handles "on", "under", ... and the multi-word "to the left of", "on the right side of",
    "on top of", "in front of", "in back of", "next to", "close to".
    """
    if pobj.dep_ != "pobj":
        return None
    prep = pobj.head
    low = prep.lower_
    if low in RELATION_PREPOSITIONS:
        return RELATION_PREPOSITIONS[low], prep
    if low == "of":
        noun = prep.head
        outer = noun.head if noun.dep_ == "pobj" else None
        if outer is None:
            return None
        name = noun.lower_
        if name == "side":
            sides = [c.lower_ for c in noun.children if c.lower_ in ("left", "right")]
            name = sides[0] if sides else name
        if name in ("left", "right") and outer.lower_ in ("to", "on", "at", "towards", "toward"):
            return f"{name} of", outer
        if name == "top" and outer.lower_ in ("on", "atop"):
            return "on", outer
        if name == "front" and outer.lower_ == "in":
            return "in front of", outer
        if name == "back" and outer.lower_ == "in":
            return "behind", outer
        return None
    if low == "to" and prep.head.lower_ in ("next", "close"):
        return "next to", prep.head
    return None


def _subject_token(attach: Any) -> Any | None:
    """The thing a relation phrase attached to ``attach`` is said of."""
    if attach.tag_ in NOUN_TAGS or attach.lower_ in PRONOUNS:
        return attach
    if not (attach.tag_.startswith("VB") or attach.tag_ == "MD"):
        return None
    if any(c.dep_ == "neg" for c in attach.children):
        return None
    for child in attach.children:
        if child.dep_ == "expl":
            attrs = [c for c in attach.children if c.dep_ == "attr"]
            return attrs[0] if attrs else None
    subjects = [c for c in attach.children if c.dep_ in ("nsubj", "nsubjpass")]
    if subjects:
        subject = subjects[0]
        if subject.lower_ in _RELATIVE and attach.dep_ == "relcl":
            return attach.head
        return subject
    if attach.dep_ in ("acl", "relcl"):
        return attach.head
    if attach.dep_ in ("conj", "xcomp", "advcl") and attach.head.i != attach.i:
        return _subject_token(attach.head)
    return None


def relation_claims(doc: Any, mentions: list[Mention], by_head: dict[int, Mention], text: str) -> list[Claim]:
    """The relation claims of ``doc`` (``by_head``: the mentions said to be there, by head index)."""
    from spacy.attrs import DEP

    out: list[Claim] = []
    pobj = doc.vocab.strings["pobj"]
    for token in (doc[int(i)] for i in (doc.to_array(DEP) == pobj).nonzero()[0]):
        found = relation_phrase(token)
        if found is None:
            continue
        relation, first = found
        subject_token = _subject_token(first.head) if first.head.i != first.i else None
        if subject_token is None:
            continue
        subject = _resolve(subject_token, mentions, by_head)
        if subject is None:
            continue
        target = _resolve(token, mentions, by_head, exclude=subject[3])
        if target is None or target[3] is subject[3]:
            continue
        t_label, _, t_end, _ = target
        s_label, s_start, s_end, _ = subject
        start, end = min(s_start, first.idx), max(t_end, s_end)
        out.append(Claim(text[start:end], start, end, "relation", s_label, relation=relation, target=t_label))
    return out


def _resolve(
    token: Any, mentions: list[Mention], by_head: dict[int, Mention], exclude: Mention | None = None
) -> tuple[str, int, int, Mention] | None:
    """``(label, start, end, mention)`` for a mention head or a pronoun that refers to one."""
    mention = by_head.get(token.i)
    if mention is not None:
        return mention.label, mention.start, mention.end, mention
    if token.lower_ in PRONOUNS and token.dep_ != "poss":
        antecedent = antecedent_of(token, mentions, exclude)
        if antecedent is not None:
            return antecedent.label, token.idx, token.idx + len(token.text), antecedent
    return None
