"""What a pronoun refers to: the most recent fitting mention (see :func:`antecedent_of`)."""

from __future__ import annotations

from typing import Any

from halluguard.correctors.mentions import Mention
from halluguard.correctors.words import PRONOUNS


def antecedent_of(token: Any, mentions: list[Mention], exclude: Mention | None = None) -> Mention | None:
    """The mention a pronoun refers to: the most recent subject of this or the previous sentence
    that fits (number, person or not), else the most recent fitting mention; never ``exclude``
    (the pronoun's own clause subject: "a dog runs behind it" is not about the dog)."""
    kind = PRONOUNS.get(token.lower_)
    if kind is None:
        return None
    own_subject = _clause_subject(token) if token.dep_ not in ("nsubj", "nsubjpass") else None
    co_arguments = _co_arguments(token)
    fitting = []
    for m in mentions:
        if m.last >= token.i or m.negated or m is exclude or m.last == own_subject or m.last in co_arguments:
            continue
        if (
            (kind == "person" and m.label == "person" and not m.plural)
            or (kind == "it" and m.label != "person" and not m.plural)
            or (kind == "they" and m.plural)
        ):
            fitting.append(m)
    if not fitting:
        return None
    starts = sentence_starts(token.doc)
    sentence_start = starts[token.i]
    previous = starts[sentence_start - 1] if sentence_start > 0 else 0
    subjects = [m for m in fitting if m.subject and m.first >= previous]
    return subjects[-1] if subjects else fitting[-1]


def _co_arguments(token: Any) -> set[int]:
    """Nouns governed by the same verb as the pronoun's preposition ("lies on the couch beside it":
    "it" is not the couch)."""
    if token.dep_ != "pobj":
        return set()
    own = token.head
    if own.lower_ == "to" and own.head.lower_ in ("next", "close"):
        own = own.head  # "next to it"
    verb = own.head
    if not verb.tag_.startswith("VB"):
        return set()
    out = {c.i for c in verb.children if c.dep_ in ("dobj", "attr")}
    for prep in verb.children:
        if prep.dep_ == "prep" and prep.i != own.i:
            out.update(c.i for c in prep.children if c.dep_ == "pobj")
    return out


def _clause_subject(token: Any) -> int | None:
    """Index of the subject of the clause a (non-subject) pronoun is in, if any."""
    node = token
    for _ in range(8):
        if node.dep_ in ("ROOT", "conj", "advcl", "relcl", "ccomp", "acl") and node.tag_.startswith(
            ("VB", "MD")
        ):
            subjects = [c.i for c in node.children if c.dep_ in ("nsubj", "nsubjpass")]
            if subjects:
                return subjects[0]
            if node.dep_ in ("acl", "relcl"):
                return node.head.i
            return None
        if node.head.i == node.i:
            return None
        node = node.head
    return None


def sentence_starts(doc: Any) -> list[int]:
    """For each token, the index of the first token of its sentence (computed once per doc)."""
    starts = doc.user_data.get("halluguard_sentence_starts")
    if starts is None or len(starts) != len(doc):
        starts = []
        for sent in doc.sents:
            starts.extend([sent.start] * (sent.end - sent.start))
        doc.user_data["halluguard_sentence_starts"] = starts
    return starts
