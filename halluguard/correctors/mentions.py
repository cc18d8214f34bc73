"""Mentions: the vocabulary nouns of a parsed answer, and whether each is said to be there.

A mention is said to be there unless negated ("there is no dog", "without a dog", "the dog is not
visible") or hypothetical ("a place for people to sit"); nouns that only modify another noun ("dog
food") are not mentions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from halluguard.correctors.vocabulary import Vocabulary
from halluguard.correctors.words import BE, EXISTENCE_VERBS, HOMOGRAPH_VERBS, NOUN_TAGS, PLURAL_NOUN_TAGS

_VISIBLE = frozenset(
    {"visible", "present", "seen", "shown", "apparent", "evident", "there", "noticeable", "discernible"}
)
_NEGATORS = frozenset({"no", "not", "n't", "never", "neither", "none", "without", "nor", "zero"})
_ABSENCE_NOUNS = frozenset(
    {"sign", "signs", "trace", "traces", "evidence", "indication", "hint", "none", "neither"}
)


@dataclass
class Mention:
    """A vocabulary noun in a parsed document: tokens ``first..last`` (``last`` is the head)."""

    first: int
    last: int
    label: str
    negated: bool  # not said to be there: negated ("no dog") or hypothetical ("for people to sit")
    plural: bool
    start: int  # character offsets of the matched words
    end: int
    subject: bool = False  # the clause's subject (or the noun of "there is ...")


def find_mentions(doc: Any, vocabulary: Vocabulary, matches: Sequence[Any] | None = None) -> list[Mention]:
    """Vocabulary nouns in ``doc`` (longest match first), with their negation status
    (``matches``: :func:`vocabulary_matches` of ``doc``, when already computed)."""
    mentions: list[Mention] = []
    for first, head, n, label in matches if matches is not None else vocabulary_matches(doc, vocabulary):
        if label is not None and _is_object_noun(head, multiword=n > 1):
            mentions.append(
                Mention(
                    first=first.i,
                    last=head.i,
                    label=label,
                    negated=_negated(head) or _hypothetical(head),
                    plural=head.tag_ in PLURAL_NOUN_TAGS,
                    start=first.idx,
                    end=head.idx + len(head.text),
                    subject=group_root(head).dep_ in ("nsubj", "nsubjpass", "attr"),
                )
            )
    return mentions


def vocabulary_matches(doc: Any, vocabulary: Vocabulary) -> list[tuple[Any, Any, int, str | None]]:
    """``(first token, last token, number of words, label)`` of every vocabulary phrase in ``doc``,
    longest match first, left to right (``label`` is ``None`` for phrases marked not objects).

    Reads the words from ``doc.to_array`` (no ``Token`` objects but for the matches: this runs on every
    token of every answer)."""
    lowers_all, spaces, trailing = lower_words(doc)
    positions = [
        i for i, word in enumerate(lowers_all)
        if not spaces[i] and not (word == "-" and not trailing[i] and i > 0 and not trailing[i - 1])
    ]  # fmt: skip  (joining hyphens, "t-shirt", are skipped)
    lowers = [lowers_all[i] for i in positions]
    out: list[tuple[Any, Any, int, str | None]] = []
    i = 0
    n_words = len(positions)
    max_n = vocabulary.max_words
    while i < n_words:
        if not lowers[i][:1].isalnum():
            i += 1
            continue
        matched = 0
        longest = min(max_n, n_words - i) if vocabulary.starts_phrase(lowers[i]) else 1
        for n in range(longest, 0, -1):
            known, label = vocabulary.entry(lowers[i : i + n])
            if not known:
                continue
            matched = n
            out.append((doc[positions[i]], doc[positions[i + n - 1]], n, label))
            break
        i += matched or 1
    return out


def lower_words(doc: Any) -> tuple[list[str], Any, Any]:
    """Every token's lower-case text, whether it is whitespace, and whether whitespace follows it."""
    from spacy.attrs import IS_SPACE, LOWER, SPACY

    strings = doc.vocab.strings
    array = doc.to_array([LOWER, IS_SPACE, SPACY])
    return [strings[int(h)] for h in array[:, 0]], array[:, 1], array[:, 2]


def _is_joining_hyphen(token: Any) -> bool:
    return token.text == "-" and not token.whitespace_ and token.i > 0 and not token.nbor(-1).whitespace_


def _is_object_noun(head: Any, multiword: bool = False) -> bool:
    """A noun that names a thing, not one that modifies another noun ("dog" in "dog food").

    Tolerates frequent tagger slips: a gerund or a verb with an object tagged as a noun after the
    mention ("a zebra standing", "a puppy share a blanket": not modifiers), the last word of a known
    multi-word object tagged as a verb ("a stop sign visible") and an argument with an article tagged
    as an adjective ("with a urinal").
    """
    if (
        head.dep_ == "conj"
        and head.head.tag_.startswith("VB")
        and head.lower_ in HOMOGRAPH_VERBS
        and not any(c.dep_ in ("det", "nummod", "poss", "amod", "compound") for c in head.children)
    ):
        return False  # "A man sits and skis": a verb tagged as a noun
    if head.tag_ not in NOUN_TAGS:
        slip = head.dep_ in ("pobj", "dobj", "nsubj", "nsubjpass", "attr") and (
            multiword and head.tag_.startswith("VB") or head.tag_ == "JJ" and _has_article(head)
        )
        if not slip:
            return False
    if head.dep_ == "compound" and head.head.i > head.i and head.head.tag_ in NOUN_TAGS:
        governor = head.head
        if governor.i == head.i + 1 and governor.lower_.endswith("ing"):
            return True
        return any(c.dep_ == "dobj" for c in governor.children)  # "a puppy share a blanket": a verb
    if head.lower_ in ("baby", "babies") and any(c.lower_ in ("its", "their") for c in head.children):
        return False  # "an elephant and its baby"
    # "a men's restroom", "children's books": a kind, not people
    return not (
        head.dep_ == "poss"
        and head.tag_ in PLURAL_NOUN_TAGS
        and not any(c.dep_ == "det" and c.lower_ not in ("a", "an") for c in head.children)
    )


def _has_article(token: Any) -> bool:
    """An article and nothing after: an adjective used as a noun ("with a urinal" tagged JJ)."""
    return any(c.dep_ == "det" for c in token.children) and not any(c.i > token.i for c in token.children)


def group_root(token: Any) -> Any:
    """The first conjunct of the coordination ``token`` belongs to (list items parsed as
    appositions count as conjuncts)."""
    while token.dep_ == "conj" or (token.dep_ == "appos" and _is_list_appos(token)):
        token = token.head
    return token


def _is_list_appos(token: Any) -> bool:
    """spaCy's small model often parses "a dog, a cat and a frisbee" with "cat" as an apposition."""
    return token.tag_ in NOUN_TAGS and any(c.dep_ in ("conj", "cc") for c in token.children)


#: verbs whose object is invited to do something, not said to be there ("inviting visitors to relax")
_INVITING = frozenset(
    "invite invites inviting invited encourage encourages encouraging allow allows allowing enable enables "
    "enabling tempt tempts tempting".split()
)
#: words before an infinitive that says what something is for ("designed to carry people")
_PURPOSE_HEADS = frozenset(
    "designed meant intended built made used able perfect ideal suitable enough great convenient".split()
)


def _hypothetical(head: Any) -> bool:
    """A mention of what could be, not of what is there: "a place for people to sit", "designed to
    carry people", "inviting visitors to relax" (bare or indefinite nouns only: "for the cat to lie
    on" is about a cat in the picture), and the viewer of the picture."""
    if head.lower_ in ("viewer", "viewers"):
        return True
    root = group_root(head)
    if any(
        c.dep_ in ("det", "poss", "nummod") and c.lower_ not in ("a", "an", "any", "some")
        for c in root.children
    ):
        return False  # "for the cat to lie on", "for its owner to return": that one is there
    verb = root.head
    to = any(c.dep_ == "aux" and c.lower_ == "to" for c in verb.children)
    if root.dep_ == "nsubj" and to and any(c.dep_ == "mark" and c.lower_ == "for" for c in verb.children):
        return True  # "for people to sit"
    if root.dep_ == "dobj" and to and verb.head.lower_ in _PURPOSE_HEADS:
        return True  # "designed to carry people"
    if root.dep_ == "dobj" and verb.lower_ in _INVITING and any(c.dep_ == "xcomp" for c in verb.children):
        return True  # "inviting visitors to relax"
    return False


def _negated(head: Any) -> bool:
    root = group_root(head)
    for node in {head, root}:
        for child in node.children:
            if child.lower_ in _NEGATORS and child.dep_ in (
                "det",
                "neg",
                "advmod",
                "preconj",
                "amod",
                "quantmod",
            ):
                return True
    if head.dep_ == "conj" and any(c.dep_ == "cc" and c.lower_ == "nor" for c in head.head.children):
        return True
    if root.dep_ == "pobj":
        prep = root.head
        if prep.lower_ == "without":
            return True
        if prep.lower_ == "of":
            owner = prep.head
            if owner.lower_ in ("none", "neither") or (
                owner.lower_ in _ABSENCE_NOUNS and any(c.lower_ in ("no", "not") for c in owner.children)
            ):
                return True
    if root.dep_ in ("nsubj", "nsubjpass", "dobj", "attr", "oprd"):
        verb = root.head
        if any(c.dep_ == "neg" for c in verb.children):
            low = verb.lower_
            if low in BE:
                if any(c.dep_ == "expl" for c in verb.children):
                    return True
                if root.dep_ in ("nsubj", "nsubjpass") and any(
                    c.dep_ in ("acomp", "advmod", "attr") and c.lower_ in _VISIBLE for c in verb.children
                ):
                    return True
            elif low in EXISTENCE_VERBS:
                return True
    return False


def left_modifiers(doc: Any, m: Mention) -> list[Any]:
    """Children before the mention of any of its words ("Two" may hang on "teddy" in "Two teddy bears")."""
    return [c for i in range(m.first, m.last + 1) for c in doc[i].children if c.i < m.first]
