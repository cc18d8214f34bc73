"""Repairs of the small English model's tagger slips on object nouns (see :func:`repair_parse`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from halluguard.correctors.attributes import colour_of
from halluguard.correctors.words import HOMOGRAPH_VERBS, NOUN_TAGS, PLURAL_NOUN_TAGS

#: the participles of :data:`~.words.HOMOGRAPH_VERBS`, which the model reads the same way in a clause
#: without a finite verb ("two zebras and a giraffe grazing in the field")
_HOMOGRAPH_PARTICIPLES: dict[str, str] = {
    w: "sitting" for w in "lying resting sitting hanging leaning floating flying sleeping waiting grazing "
    "swimming perching hovering roaming standing".split()
}
#: verbs that also make noun compounds with an object noun ("car park", "bus stop"): read as verbs
#: only after a plural noun ("Cars park along the street"), which such compounds do not start with
_COMPOUND_VERBS: dict[str, str] = {
    w: "sit" for w in "park stop walk ride race line show top cover display watch light".split()
}
#: words that can really be auxiliaries ("fly" in "People fly kites" cannot)
_AUXILIARIES = frozenset(
    "be am is are was were been being 's 're 'm have has had having 've 'd do does did will would "
    "shall should can could may might must ca wo to".split()
)
_NOUN_SLOT_DEPS = frozenset({"dobj", "pobj", "nsubj", "nsubjpass", "attr", "conj", "appos", "oprd"})
_DETERMINER_TAGS = frozenset({"DT", "PDT", "PRP$", "WP$", "CD", "POS"})
_STAND_IN = ("dog", "dogs")  # a noun the tagger never takes for anything else


def repair_parse(doc: Any, nouns: Sequence[int], reparse: Callable[[str], Any]) -> int:
    """Re-parse the sentences where the tagger took an object noun for another part of speech.

    The small English model mistags rare or ambiguous nouns in some positions: "A surfboard lies"
    (adverb), "A remote lies on the couch" (adjective, and "lies" a noun), "People fly kites" (a
    verb), "A knife and a fork lie next to the cup" ("fork lie" a compound noun). ``nouns`` are
    token indices of vocabulary nouns; each one in such a position (after a determiner and before a
    verb, a preposition or punctuation; a verb form in an object's slot; the first noun of a
    compound whose second "noun" is one of a few verbs when the sentence has no verb) is replaced by
    a stand-in noun ("dog"), and such a verb by a stand-in verb ("sits"); the sentence is parsed
    again and, if the stand-ins came out as a noun and a verb, that parse replaces the sentence's
    tags and dependencies in ``doc`` (in place, so the rewriter sees it too). The other words,
    including verbs such as "fly" or "lie" themselves, are never made into nouns. ``reparse``
    parses a text with the pipeline's tagger and parser (the claims component's
    :meth:`~halluguard.correctors.component.ClaimExtractor.reparse`). Returns the number of
    sentences re-parsed.
    """
    by_sentence: dict[int, dict[int, str]] = {}
    for i in sorted(set(nouns)):
        swaps = _slip(doc[i])
        if swaps:
            by_sentence.setdefault(doc[i].sent.start, {}).update(swaps)
    if not by_sentence:
        return 0
    from halluguard.correctors.nlp import splice_parse

    repaired = 0
    for start, swaps in sorted(by_sentence.items()):
        sent = doc[start].sent
        end = sent.end
        while end > start + 1 and doc[end - 1].is_space:
            end -= 1
        words = [swaps.get(t.i, t.text) for t in doc[start:end]]
        other = reparse(
            "".join(word + doc[i].whitespace_ for word, i in zip(words, range(start, end))).rstrip()
        )
        if len(other) != end - start or any(a.text != b for a, b in zip(other, words)):
            continue  # the stand-ins changed the tokenisation
        nouns_ok = all(
            other[i - start].tag_ in NOUN_TAGS
            and (_in_noun_slot(other[i - start]) or other[i - start].dep_ == "ROOT")
            for i, word in swaps.items() if word.lower() in _STAND_IN
        )  # fmt: skip
        verbs_ok = all(
            other[i - start].tag_.startswith("VB")
            for i, word in swaps.items()
            if word.lower() not in _STAND_IN
        )
        if nouns_ok and verbs_ok:
            splice_parse(doc, start, other)
            repaired += 1
    return repaired


def _slip(token: Any) -> dict[int, str] | None:
    """Stand-ins for ``token`` (a vocabulary noun) and its verb when the tagger slipped there."""
    doc = token.doc
    noun = _STAND_IN[1] if _looks_plural(token) else _STAND_IN[0]
    if token.text[:1].isupper():
        noun = noun.capitalize()
    following = doc[token.i + 1] if token.i + 1 < len(doc) else None
    if token.tag_ in NOUN_TAGS:
        # "a fork lie next to the cup": a compound whose head is a verb the tagger missed
        if (
            token.dep_ in ("compound", "amod", "nmod")
            and following is not None
            and token.head.i == following.i
        ):
            if _missed_verb(following):
                return {token.i: noun, following.i: HOMOGRAPH_VERBS[following.lower_]}
            if _missed_verb(following, _HOMOGRAPH_PARTICIPLES):
                return {token.i: noun, following.i: _HOMOGRAPH_PARTICIPLES[following.lower_]}
            if token.tag_ in PLURAL_NOUN_TAGS and _missed_verb(following, _COMPOUND_VERBS):
                return {token.i: noun, following.i: _COMPOUND_VERBS[following.lower_]}
        return None
    if token.tag_.startswith("VB"):
        children = list(token.children)
        # "Kids fly kites on the beach": a verb form where an object goes
        if _in_noun_slot(token) and not any(
            c.dep_ in ("nsubj", "nsubjpass", "aux", "auxpass", "dobj", "expl", "mark") for c in children
        ):
            return {token.i: noun}
        # "People fly kites.": a lexical verb taken for the auxiliary of the noun
        if token.i > 0 and any(
            c.dep_ == "aux" and c.i == token.i - 1 and c.lower_ not in _AUXILIARIES for c in children
        ):
            return {token.i: noun}
        return None
    # "A surfboard lies", "a remote lies": a noun tagged as an adjective or adverb after a determiner
    if token.is_punct or not _after_determiner(token):
        return None
    if following is not None and following.tag_ == "CC":
        third = doc[following.i + 1] if following.i + 1 < len(doc) else None
        if third is not None and (third.tag_.startswith("JJ") or colour_of(third)):
            return None  # "an orange and white cat": coordinated adjectives
    if (
        following is None
        or following.is_punct
        or following.tag_ in ("IN", "CC", "TO", "MD")
        or (following.tag_.startswith("VB"))
        or (following.lower_ in ("next", "close") and following.nbor(1).lower_ == "to")  # "an oven next to"
    ):
        return {token.i: noun}
    if _missed_verb(following):
        return {token.i: noun, following.i: HOMOGRAPH_VERBS[following.lower_]}
    return None


def _in_noun_slot(token: Any) -> bool:
    """An object's, a subject's or a list item's place ("and skis" after a verb is not one)."""
    if token.dep_ in ("conj", "appos"):
        return token.head.tag_ in NOUN_TAGS
    return token.dep_ in _NOUN_SLOT_DEPS


def _looks_plural(token: Any) -> bool:
    from halluguard.correctors.vocabulary import singularize

    low = token.lower_
    return token.tag_ in PLURAL_NOUN_TAGS or (low.endswith("s") and singularize(low) != low)


def _after_determiner(token: Any) -> bool:
    """The word before (skipping adjectives) is an article, a number or a possessive."""
    i = token.i - 1
    while i >= 0 and token.doc[i].tag_ in ("JJ", "JJR", "JJS") and token.doc[i].i > token.sent.start:
        i -= 1
    if i < 0:
        return False
    before = token.doc[i]
    return before.tag_ in _DETERMINER_TAGS or before.lower_ in ("a", "an", "the")


def _missed_verb(token: Any, verbs: dict[str, str] = HOMOGRAPH_VERBS) -> bool:
    """One of ``verbs``, not tagged as a verb, in a sentence with no verb at all."""
    if token.lower_ not in verbs or token.tag_.startswith("VB"):
        return False
    return not any(t.tag_.startswith(("VB", "MD")) for t in token.sent)
