"""Colour claims: attributive ("a dark blue car") and predicative ("the car is red", "It is red")."""

from __future__ import annotations

from typing import Any

from halluguard.correctors.colours import COLOUR_SHADES, canonical_colour
from halluguard.correctors.mentions import Mention, left_modifiers, lower_words
from halluguard.correctors.pronouns import antecedent_of
from halluguard.correctors.words import BE
from halluguard.records import Claim


def colour_of(token: Any) -> str | None:
    """The canonical colour (one of :data:`~.colours.COLOURS`) a token names, or ``None``."""
    return canonical_colour(token.lower_)


def _single_colour(token: Any) -> bool:
    """Not part of "black and white" (coordinated colours make no claim)."""
    if token.dep_ == "conj" and colour_of(token.head):
        return False
    return not any(c.dep_ in ("conj", "cc") for c in token.children)


def _shade_start(doc: Any, token: Any) -> int:
    """Include "dark"/"light" right before the colour word."""
    i = token.i
    while i > 0 and doc[i - 1].lower_ in COLOUR_SHADES and not canonical_colour(doc[i - 1].lower_):
        i -= 1
    if i > 0 and doc[i - 1].lower_ == "-" and i > 1 and doc[i - 2].lower_ in COLOUR_SHADES:
        i -= 2
    return doc[i].idx


def colour_claims(doc: Any, m: Mention, text: str) -> list[Claim]:
    """The colour claims on mention ``m``: "a dark blue car", "the car is red" (never of people)."""
    if m.label == "person":
        return []
    head = doc[m.last]
    out: list[Claim] = []
    for child in left_modifiers(doc, m):
        if (
            child.dep_ in ("amod", "compound", "nmod", "advmod")
            and colour_of(child)
            and _single_colour(child)
            and not any(colour_of(c) for c in child.children if c.dep_ == "conj")
        ):
            start = _shade_start(doc, child)
            out.append(
                Claim(text[start : m.end], start, m.end, "attribute", m.label, attribute=colour_of(child))
            )
    if head.dep_ in ("nsubj", "nsubjpass") and head.head.lower_ in BE:
        for child in head.head.children:
            if child.dep_ in ("acomp", "attr") and colour_of(child) and _single_colour(child):
                if any(c.dep_ == "neg" for c in head.head.children):
                    continue
                end = child.idx + len(child.text)
                out.append(
                    Claim(text[m.start : end], m.start, end, "attribute", m.label, attribute=colour_of(child))
                )
    return out


def pronoun_colour_claims(doc: Any, mentions: list[Mention], text: str) -> list[Claim]:
    """Colour claims made of a pronoun's antecedent: "It is red", "They are white"."""
    out: list[Claim] = []
    lowers = lower_words(doc)[0]
    for token in (doc[i] for i, word in enumerate(lowers) if word in ("it", "they")):
        if token.dep_ != "nsubj" or token.head.lower_ not in BE:
            continue
        if any(c.dep_ == "neg" for c in token.head.children):
            continue
        antecedent = antecedent_of(token, mentions)
        if antecedent is None or antecedent.label == "person":
            continue
        for child in token.head.children:
            if child.dep_ in ("acomp", "attr") and colour_of(child) and _single_colour(child):
                end = child.idx + len(child.text)
                out.append(
                    Claim(text[token.idx : end], token.idx, end, "attribute", antecedent.label,
                          attribute=colour_of(child))
                )  # fmt: skip
    return out
