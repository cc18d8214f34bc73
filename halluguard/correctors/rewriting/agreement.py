"""Subject-verb agreement after an edit changed the subject's number ("There are a dog and a cat"
minus the dog -> "There is a cat")."""

from __future__ import annotations

from typing import Any

from halluguard.correctors import grammar
from halluguard.correctors.rewriting.plan import Plan, Replacement, end_of
from halluguard.correctors.words import HOMOGRAPH_VERBS


def agree(plan: Plan, noun: Any, plural: bool) -> None:
    """Make the verb of which ``noun`` (a group root) is the subject singular or plural."""
    verb = noun.head
    if noun.dep_ not in ("nsubj", "nsubjpass") and not (
        noun.dep_ == "attr" and any(c.dep_ == "expl" for c in verb.children)
    ):
        return
    finite = None
    for child in verb.children:
        if child.dep_ in ("aux", "auxpass") and child.tag_ in ("VBP", "VBZ", "VBD") and child.i < verb.i:
            finite = child
            break
    if finite is None and verb.tag_ in ("VBP", "VBZ", "VBD"):
        finite = verb
    tag = finite.tag_ if finite is not None else ""
    if finite is None and verb.i > noun.i and not any(c.dep_ in ("aux", "auxpass") for c in verb.children):
        # "A woman and a dog stand": a present-tense verb tagged as a base form, or as a noun
        if verb.tag_ == "VB" or (verb.lower_ in HOMOGRAPH_VERBS and not verb.tag_.startswith("VB")):
            finite = verb
            tag = "VBZ" if verb.lower_.endswith("s") and verb.tag_ != "VB" else "VBP"
    if finite is None or tag == "VBD" and finite.lower_ not in ("was", "were"):
        return
    word = finite.text
    new = grammar.verb_plural(word) if plural else grammar.verb_singular(word)
    if tag == "VBZ" and not plural or tag == "VBP" and plural:
        return
    if finite.lower_ == "was" and not plural or finite.lower_ == "were" and plural:
        return
    if new != word:
        plan.ops.append(Replacement(finite.idx, end_of(finite), new, "agreement"))
