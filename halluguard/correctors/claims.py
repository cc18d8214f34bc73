"""Stage 1: turn answers into checkable claims (objects, counts, colours, spatial relations).

Each claim carries character offsets into the original text; ``text[start:end] == claim.text``.

- **object**: one claim per mention of a vocabulary noun that the sentence asserts exists. The
  span is the noun itself (all its words: "teddy bear", "dogs"), without determiner or adjectives.
  Not claims: nouns that only modify another noun ("dog food", "pizza box"), and negated mentions
  ("there is no dog", "no dogs", "without a dog", "neither a cat nor a dog", "the dog is not
  visible", "the image does not show a dog", "no sign of a dog").
- **count**: "two dogs", "3 cats", "both dogs", "a pair of shoes" (a pair of skis is one "skis"),
  "a couple of dogs" set ``count``; "a few" (2), "several" (3), "many", "multiple", "numerous",
  "a group/herd/flock of" (2), "at least 13" (13) and "more than 2" (3) set ``count_min``.
  Approximate counts ("about five", "up to ten") make no claim. The span runs from the first word
  of the quantifier ("a couple of", "at least 13") to the end of the noun: "two large dogs".
- **attribute**: colours, as one of the eleven names of :data:`COLOURS` (shared with the pixel
  check of :mod:`.colours`, synonyms included: "grey", "navy") in ``claim.attribute``: attributive
  "a dark blue car" (span "dark blue car") and predicative "the car is red" (span "car is red",
  or "It is red" when a pronoun names the object). Coordinated colours ("black and white") and
  colours of people make no claim.
- **relation**: "a cup to the left of the laptop", "the cat is on the bed", "a dog lying under a
  table", "there is a cup next to it": ``label`` is the subject's class, ``relation`` one of
  :data:`RELATIONS` ("to the left of"/"on the left side of" -> "left of"; "on top of", "atop",
  "onto" -> "on"; "beneath", "underneath" -> "under"; "beside", "alongside", "near", "close to"
  -> "next to"; "over" -> "above"; "in back of" -> "behind"), ``target`` the object's class. The
  span runs from the subject (or pronoun) to the end of the object.

Pronouns ("it", "they", "he", "she") are resolved to the most recent fitting mention, for
attribute and relation claims only (never to another noun of the pronoun's own verb: in "a remote
lies on the couch beside it", "it" is not the couch).

Not claims either: what could be there rather than what is ("a place for people to sit",
"designed to carry passengers", "inviting visitors to relax", with bare or indefinite nouns only)
and the viewer of the picture ("capturing the viewer's attention").

The small English model mistags some object nouns ("A surfboard lies" as an adverb, "People fly
kites" as a verb, "a fork lie" as a compound noun); :func:`repair_parse` parses such sentences again
with stand-in words and keeps that parse when it is sound, so they make their claims and the
rewriter edits them correctly.

>>> claims = extract_claims(["There are two dogs and no cat; the red frisbee is on the grass."])[0]
... # doctest: +SKIP
>>> [(c.kind, c.text, c.label) for c in claims]  # doctest: +SKIP
[('count', 'two dogs', 'dog'), ('object', 'dogs', 'dog'),
 ('attribute', 'red frisbee', 'frisbee'), ('object', 'frisbee', 'frisbee')]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from halluguard.correctors.attributes import colour_claims, colour_of, pronoun_colour_claims
from halluguard.correctors.colours import COLOURS
from halluguard.correctors.counts import NUMBER_WORDS, PAIRED_LABELS, count_of, number_value, quantifier
from halluguard.correctors.mentions import Mention, find_mentions, group_root, vocabulary_matches
from halluguard.correctors.parse_repair import repair_parse
from halluguard.correctors.pronouns import sentence_starts
from halluguard.correctors.relations import relation_claims, relation_phrase
from halluguard.correctors.vocabulary import Vocabulary
from halluguard.correctors.words import RELATIONS
from halluguard.records import Claim

__all__ = [
    "COLOURS", "NUMBER_WORDS", "PAIRED_LABELS", "RELATIONS", "Mention", "claims_from_doc", "colour_of",
    "extract_claims", "find_mentions", "group_root", "number_value", "quantifier", "relation_phrase",
    "repair_parse", "sentence_starts", "vocabulary_matches",
]  # fmt: skip


def extract_claims(
    texts: Sequence[str],
    vocabulary: Vocabulary | None = None,
    nlp: Any = None,
    *,
    batch_size: int = 64,
) -> list[list[Claim]]:
    """The claims of each text, in text order, through the claims component (:mod:`.component`).

    ``vocabulary`` defaults to :meth:`Vocabulary.default` (COCO); ``nlp`` (a spaCy pipeline with a
    tagger and a parser; the component is added to it) to
    :func:`~halluguard.correctors.nlp.load_spacy`. For the parses too, use
    :func:`~halluguard.correctors.component.parse_claims`.
    """
    from halluguard.correctors.component import parse_claims

    if isinstance(texts, str):
        raise TypeError("extract_claims takes a list of texts; wrap a single text in a list")
    vocab = vocabulary if vocabulary is not None else Vocabulary.default()
    return [doc._.claims for doc in parse_claims(list(texts), vocab, nlp, batch_size=batch_size)]


def claims_from_doc(doc: Any, vocabulary: Vocabulary, matches: Sequence[Any] | None = None) -> list[Claim]:
    """The claims of one parsed (and repaired) document; see the module docstring for what each
    covers (``matches``: :func:`vocabulary_matches` of ``doc``, when already computed)."""
    matches = vocabulary_matches(doc, vocabulary) if matches is None else matches
    mentions = find_mentions(doc, vocabulary, matches)
    by_head = {m.last: m for m in mentions if not m.negated}
    claims: list[Claim] = []
    text = doc.text
    for m in mentions:
        if m.negated:
            continue
        claims.append(
            Claim(text=text[m.start : m.end], start=m.start, end=m.end, kind="object", label=m.label)
        )
        counted = count_of(doc, m)
        if counted is not None:
            start, count, count_min = counted
            claims.append(
                Claim(text[start : m.end], start, m.end, "count", m.label, count=count, count_min=count_min)
            )
        claims.extend(colour_claims(doc, m, text))
    claims.extend(pronoun_colour_claims(doc, mentions, text))
    claims.extend(relation_claims(doc, mentions, by_head, text))
    order = {"object": 0, "count": 1, "attribute": 2, "relation": 3}
    claims.sort(key=lambda c: (c.start, order[c.kind], c.end))
    return claims
