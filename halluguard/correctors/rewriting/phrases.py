"""Phrases and clauses: which ones a sentence can do without, which it needs (its place, its
complement), and their characters."""

from __future__ import annotations

from typing import Any

from halluguard.correctors.words import FINITE_BE, NOUN_TAGS, PART_NOUNS, PLACE_PREPOSITIONS, RELATIONAL_NOUNS

#: "a bowl of apples" can lose "of apples"; other "X of Y" ("a slice of pizza", "the presence of a
#: dog", "a group of people") are about Y, and go as a whole
CONTAINER_NOUNS = frozenset(
    "bowl bowls plate plates cup cups glass glasses box boxes basket baskets tray trays bag bags bottle "
    "bottles jar jars vase vases pot pots pan pans bucket buckets bin bins crate crates carton cartons can "
    "cans mug mugs container containers dish dishes platter platters table tables shelf shelves".split()
)
#: verbs that need their place ("The bottle is located on the table" is not "... is located.")
_LOCATIVE_VERBS = frozenset(
    "located situated positioned placed perched set seated resting kept stored mounted hung hanging "
    "attached displayed stationed parked lying sitting standing".split()
)
#: verbs that need their phrase ("The table is surrounded by chairs" is not "... is surrounded.")
_COMPLEMENT_VERBS = frozenset(
    "surrounded filled covered topped lined accompanied occupied flanked crowded dotted adorned populated "
    "packed stocked loaded composed consisting consists".split()
)
#: nouns whose "of" phrase cannot go ("in the process of cutting a cake")
NEEDS_OF = frozenset({"process", "midst", "act", "verge", "course"})
#: of the locative verbs, the ones a clause can end with ("The man is seated.", "A car is parked.")
_STANDALONE_LOCATIVES = frozenset("lying sitting standing parked seated".split())
#: dependencies of a clause's subject
SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass", "expl", "csubj"})
#: verbs whose object can go ("A man is eating [a hot dog].", "A girl is reading.")
OBJECT_OPTIONAL_VERBS = frozenset(
    "eat eats eating ate eaten drink drinks drinking drank read reads reading write writes writing wrote "
    "cook cooks cooking cooked bake bakes baking paint paints painting draw draws drawing smoke smokes "
    "smoking play plays playing played watch watches watching watched sing sings singing type types typing "
    "ride rides riding rode".split()
)
#: dependencies of the phrases and clauses a sentence can do without (unless one is its predicate)
OPTIONAL_DEPS = frozenset(
    {"acl", "relcl", "advcl", "appos", "npadvmod", "parataxis", "agent", "prep", "advmod"}
)


def place_phrases(noun: Any) -> list[Any]:
    """The place phrases after ``noun`` that modify it ("a dog [on a bed]")."""
    return [c for c in noun.children if c.i > noun.i and place_object(c) is not None]


def place_tail(unit: Any, noun: Any) -> Any | None:
    """A place phrase after ``noun`` at the end of ``unit`` (a phrase of a verb that goes with the
    noun) that says where the verb's subject is: "is parked next to a meter [on a quiet street]"."""
    if not unit.head.tag_.startswith("VB") or noun.tag_ not in NOUN_TAGS:
        return None
    places = place_phrases(noun)
    if not places or max(t.i for t in unit.subtree) != max(t.i for t in places[-1].subtree):
        return None
    return places[0]


def place_object(modifier: Any) -> Any | None:
    """The object of a place phrase modifying a noun: "on the table", "next to a chair", "on top of
    the table", "to the left of the sofa" -> the table, the chair, the table, the sofa."""
    prep = modifier
    if modifier.dep_ in ("advmod", "amod") and modifier.lower_ in ("next", "close"):
        prep = next((c for c in modifier.children if c.dep_ == "prep" and c.lower_ == "to"), None)
    if prep is None or prep.dep_ != "prep" or prep.lower_ not in PLACE_PREPOSITIONS | {"to"}:
        return None
    obj = next((c for c in prep.children if c.dep_ == "pobj"), None)
    if prep.lower_ == "to" and modifier is prep and (obj is None or obj.lower_ not in RELATIONAL_NOUNS):
        return None  # "to a friend": no place; "to the left of" is one
    while obj is not None and obj.lower_ in RELATIONAL_NOUNS:  # "the left of the sofa": the sofa
        of = next((c for c in obj.children if c.dep_ == "prep" and c.lower_ == "of"), None)
        if of is None:
            break  # "at the corner"
        obj = next((c for c in of.children if c.dep_ == "pobj"), None)
    return obj if obj is not None and obj.tag_ in NOUN_TAGS else None


def preposition_top(pobj: Any) -> Any:
    """The first word of the preposition governing ``pobj`` ("in" of "in front of")."""
    prep = pobj.head
    while prep.lower_ == "of" and prep.head.dep_ == "pobj" and prep.head.lower_ in RELATIONAL_NOUNS:
        prep = prep.head.head
    if (
        prep.lower_ == "to"
        and prep.head.lower_ in ("next", "close")
        and prep.head.dep_ in ("advmod", "amod", "prep", "acomp")
    ):
        prep = prep.head
    return prep


def is_part_of(of: Any) -> bool:
    """ "of" after a noun of place that can stand alone ("the middle of", "the left side of",
    "the edge of"; not "in front of" or "on top of", which need their object)."""
    return (
        of.lower_ == "of"
        and of.head.lower_ in PART_NOUNS
        and of.head.dep_ == "pobj"
        and any(c.dep_ == "det" for c in of.head.children)
    )


def is_predicate(top: Any) -> bool:
    """A place phrase the clause needs: "The cat is on the bed", "The bottle is located on ..."."""
    head = top.head
    low = head.lower_
    if low not in FINITE_BE and low not in _LOCATIVE_VERBS and low not in _COMPLEMENT_VERBS:
        return False
    if any(c.dep_ == "expl" for c in head.children):
        return False
    if low in _STANDALONE_LOCATIVES:
        return False
    others = [
        c for c in head.children
        if c.i != top.i and c.dep_ in ("prep", "advmod", "acomp", "attr", "xcomp", "dobj", "oprd")
        and not c.is_punct and c.lower_ not in ("also", "not", "n't", "additionally", "there")
    ]  # fmt: skip
    return not others


def is_purpose(verb: Any) -> bool:
    """An infinitive of purpose after a verb that has its object ("using a knife to cut the cake")."""
    head = verb.head
    return any(c.dep_ == "aux" and c.lower_ == "to" for c in verb.children) and any(
        c.dep_ == "dobj" and c.i < verb.i for c in head.children
    )


def span_chars(token: Any) -> tuple[int, int]:
    tokens = [t for t in token.subtree]
    while tokens and (tokens[-1].is_punct or tokens[-1].is_space):
        tokens.pop()
    while tokens and (tokens[0].is_punct or tokens[0].is_space):
        tokens.pop(0)
    return tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)


def strip_span(span: Any) -> tuple[int, int]:
    tokens = [t for t in span if not t.is_space]
    if not tokens:
        return span.start_char, span.start_char
    return tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)
