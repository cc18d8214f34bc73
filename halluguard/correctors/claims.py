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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from halluguard.correctors.colours import COLOURS, canonical_colour
from halluguard.correctors.vocabulary import Vocabulary
from halluguard.records import Claim

__all__ = [
    "COLOURS", "NUMBER_WORDS", "RELATIONS", "Mention", "claims_from_doc", "colour_of", "extract_claims",
    "find_mentions", "group_root", "quantifier", "relation_phrase", "repair_parse", "vocabulary_matches",
]  # fmt: skip

COLOUR_SHADES = frozenset({"dark", "light", "bright", "pale", "deep", "vivid", "pastel", "navy"})

#: canonical relation (the names :mod:`.verify` checks) -> how the rewriter writes it
RELATIONS: dict[str, str] = {
    "left of": "to the left of", "right of": "to the right of", "on": "on", "above": "above",
    "below": "below", "under": "under", "next to": "next to", "in front of": "in front of",
    "behind": "behind",
}  # fmt: skip
_SIMPLE_RELATIONS = {
    "on": "on", "onto": "on", "upon": "on", "atop": "on", "above": "above", "over": "above",
    "below": "below", "beneath": "under", "under": "under", "underneath": "under", "beside": "next to",
    "alongside": "next to", "near": "next to", "behind": "behind",
}  # fmt: skip

NUMBER_WORDS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "dozen": 12,
}  # fmt: skip
_EXACT_WORDS = {"both": 2, "single": 1, "lone": 1, "solitary": 1}
_MIN_WORDS = {"few": 2, "several": 3, "many": 2, "multiple": 2, "numerous": 2, "various": 2, "countless": 2}
_GROUP_NOUNS = {
    "pair": 2, "couple": 2, "dozen": 12, "trio": 3, "group": 0, "herd": 0, "flock": 0, "crowd": 0,
    "bunch": 0, "lot": 0, "lots": 0, "number": 0, "variety": 0, "row": 0, "line": 0, "stack": 0,
    "pile": 0, "team": 0, "fleet": 0, "collection": 0, "cluster": 0, "assortment": 0, "pack": 0,
    "set": 0, "dozens": 0, "plenty": 0, "array": 0, "series": 0, "bundle": 0, "swarm": 0,
}  # fmt: skip
#: labels whose object is a pair ("a pair of skis" is one detection, not two)
PAIRED_LABELS = frozenset({"skis", "scissors"})
_APPROXIMATE = frozenset("about around approximately roughly nearly almost some up under maybe".split())
_NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
_BE = frozenset({"is", "are", "was", "were", "be", "been", "being", "'s", "'re", "am"})
_EXISTENCE = frozenset(
    "see seen saw sees seeing show shows shown showing showed depict depicts depicted depicting contain "
    "contains contained containing include includes included including have has had having feature "
    "features featured featuring appear appears appeared appearing find found spot spotted notice noticed "
    "observe observed detect detected visible present exist exists".split()
)
_VISIBLE = frozenset(
    {"visible", "present", "seen", "shown", "apparent", "evident", "there", "noticeable", "discernible"}
)
_NEGATORS = frozenset({"no", "not", "n't", "never", "neither", "none", "without", "nor", "zero"})
_ABSENCE_NOUNS = frozenset(
    {"sign", "signs", "trace", "traces", "evidence", "indication", "hint", "none", "neither"}
)
_RELATIVE = frozenset({"that", "which", "who", "whom"})
_PRONOUNS = {
    "it": "it", "its": "it", "itself": "it", "they": "they", "them": "they", "their": "they",
    "he": "person", "him": "person", "his": "person", "she": "person", "her": "person",
}  # fmt: skip


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
        counted = _count(doc, m)
        if counted is not None:
            start, count, count_min = counted
            claims.append(
                Claim(text[start : m.end], start, m.end, "count", m.label, count=count, count_min=count_min)
            )
        claims.extend(_attributes(doc, m, text))
    claims.extend(_pronoun_attributes(doc, mentions, text))
    claims.extend(_relations(doc, mentions, by_head, text))
    order = {"object": 0, "count": 1, "attribute": 2, "relation": 3}
    claims.sort(key=lambda c: (c.start, order[c.kind], c.end))
    return claims


# ---------------------------------------------------------------------- mentions


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
                    plural=head.tag_ in ("NNS", "NNPS"),
                    start=first.idx,
                    end=head.idx + len(head.text),
                    subject=group_root(head).dep_ in ("nsubj", "nsubjpass", "attr"),
                )
            )
    return mentions


def vocabulary_matches(doc: Any, vocabulary: Vocabulary) -> list[tuple[Any, Any, int, str | None]]:
    """``(first token, last token, number of words, label)`` of every vocabulary phrase in ``doc``,
    longest match first, left to right (``label`` is ``None`` for phrases marked not objects)."""
    words = [t for t in doc if not _is_joining_hyphen(t) and not t.is_space]
    lowers = [t.lower_ for t in words]
    out: list[tuple[Any, Any, int, str | None]] = []
    i = 0
    n_words = len(words)
    max_n = vocabulary.max_words
    while i < n_words:
        if not words[i].text[:1].isalnum():
            i += 1
            continue
        matched = 0
        for n in range(min(max_n, n_words - i), 0, -1):
            known, label = vocabulary.entry(lowers[i : i + n])
            if not known:
                continue
            matched = n
            out.append((words[i], words[i + n - 1], n, label))
            break
        i += matched or 1
    return out


# ---------------------------------------------------------------------- tagger slips

#: verbs that are also nouns, which the small English model reads as the second noun of a
#: compound after an object noun ("a fork lie next to the cup", "a remote lies on the couch")
#: when the sentence has no other verb; each maps to a stand-in verb of the same number
_HOMOGRAPH_VERBS: dict[str, str] = {
    **{w: "sit" for w in "lie rest sit hang lean float fly sleep wait graze swim perch hover roam stand ski "
       "surf snowboard skateboard".split()},
    **{w: "sits" for w in "lies rests sits hangs leans floats flies sleeps waits grazes swims perches hovers "
       "roams stands skis surfs snowboards skateboards".split()},
}  # fmt: skip
#: their participles, which it reads the same way in a clause without a finite verb ("two zebras and
#: a giraffe grazing in the field")
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
            other[i - start].tag_ in _NOUN_TAGS and (_in_noun_slot(other[i - start]) or other[i - start].dep_ == "ROOT")
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
    if token.tag_ in _NOUN_TAGS:
        # "a fork lie next to the cup": a compound whose head is a verb the tagger missed
        if (
            token.dep_ in ("compound", "amod", "nmod")
            and following is not None
            and token.head.i == following.i
        ):
            if _missed_verb(following):
                return {token.i: noun, following.i: _HOMOGRAPH_VERBS[following.lower_]}
            if _missed_verb(following, _HOMOGRAPH_PARTICIPLES):
                return {token.i: noun, following.i: _HOMOGRAPH_PARTICIPLES[following.lower_]}
            if token.tag_ in ("NNS", "NNPS") and _missed_verb(following, _COMPOUND_VERBS):
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
        return {token.i: noun, following.i: _HOMOGRAPH_VERBS[following.lower_]}
    return None


def _in_noun_slot(token: Any) -> bool:
    """An object's, a subject's or a list item's place ("and skis" after a verb is not one)."""
    if token.dep_ in ("conj", "appos"):
        return token.head.tag_ in _NOUN_TAGS
    return token.dep_ in _NOUN_SLOT_DEPS


def _looks_plural(token: Any) -> bool:
    from halluguard.correctors.vocabulary import singularize

    low = token.lower_
    return token.tag_ in ("NNS", "NNPS") or (low.endswith("s") and singularize(low) != low)


def _after_determiner(token: Any) -> bool:
    """The word before (skipping adjectives) is an article, a number or a possessive."""
    i = token.i - 1
    while i >= 0 and token.doc[i].tag_ in ("JJ", "JJR", "JJS") and token.doc[i].i > token.sent.start:
        i -= 1
    if i < 0:
        return False
    before = token.doc[i]
    return before.tag_ in _DETERMINER_TAGS or before.lower_ in ("a", "an", "the")


def _missed_verb(token: Any, verbs: dict[str, str] = _HOMOGRAPH_VERBS) -> bool:
    """One of ``verbs``, not tagged as a verb, in a sentence with no verb at all."""
    if token.lower_ not in verbs or token.tag_.startswith("VB"):
        return False
    return not any(t.tag_.startswith(("VB", "MD")) for t in token.sent)


def _is_joining_hyphen(token: Any) -> bool:
    return token.text == "-" and not token.whitespace_ and token.i > 0 and not token.nbor(-1).whitespace_


def _is_object_noun(head: Any, multiword: bool = False) -> bool:
    """A noun that names a thing, not one that modifies another noun ("dog" in "dog food").

    Tolerates frequent tagger slips: a gerund or a verb with an object tagged as a noun after the
    mention ("a zebra standing", "a puppy share a blanket": not modifiers), the last word of a known multi-word object tagged as
    a verb ("a stop sign visible") and an argument with an article tagged as an adjective ("with
    a urinal").
    """
    if (
        head.dep_ == "conj"
        and head.head.tag_.startswith("VB")
        and head.lower_ in _HOMOGRAPH_VERBS
        and not any(c.dep_ in ("det", "nummod", "poss", "amod", "compound") for c in head.children)
    ):
        return False  # "A man sits and skis": a verb tagged as a noun
    if head.tag_ not in _NOUN_TAGS:
        slip = head.dep_ in ("pobj", "dobj", "nsubj", "nsubjpass", "attr") and (
            multiword and head.tag_.startswith("VB") or head.tag_ == "JJ" and _has_article(head)
        )
        if not slip:
            return False
    if head.dep_ == "compound" and head.head.i > head.i and head.head.tag_ in _NOUN_TAGS:
        governor = head.head
        if governor.i == head.i + 1 and governor.lower_.endswith("ing"):
            return True
        return any(c.dep_ == "dobj" for c in governor.children)  # "a puppy share a blanket": a verb
    if head.lower_ in ("baby", "babies") and any(c.lower_ in ("its", "their") for c in head.children):
        return False  # "an elephant and its baby"
    # "a men's restroom", "children's books": a kind, not people
    return not (
        head.dep_ == "poss"
        and head.tag_ in ("NNS", "NNPS")
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
    return token.tag_ in _NOUN_TAGS and any(c.dep_ in ("conj", "cc") for c in token.children)


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
            if low in _BE:
                if any(c.dep_ == "expl" for c in verb.children):
                    return True
                if root.dep_ in ("nsubj", "nsubjpass") and any(
                    c.dep_ in ("acomp", "advmod", "attr") and c.lower_ in _VISIBLE for c in verb.children
                ):
                    return True
            elif low in _EXISTENCE:
                return True
    return False


# ---------------------------------------------------------------------- counts


def number_value(token: Any) -> int | None:
    """The integer a number token names ("two", "13", "a dozen"), else ``None``."""
    low = token.lower_.replace(",", "")
    if low.isdigit():
        return int(low)
    return NUMBER_WORDS.get(low)


def _count(doc: Any, m: Mention) -> tuple[int, int | None, int | None] | None:
    """``(start_char, count, count_min)`` of the quantifier on mention ``m``, or ``None``."""
    found = quantifier(doc, m)
    return None if found is None else (found[0], found[2], found[3])


def quantifier(doc: Any, m: Mention) -> tuple[int, int, int | None, int | None] | None:
    """``(start_char, end_char, count, count_min)`` of the words that quantify mention ``m``
    ("two", "at least 13", "a couple of", "several"), or ``None``."""
    head = doc[m.last]
    for child in _left_modifiers(doc, m):
        low = child.lower_
        end = child.idx + len(child.text)
        if child.dep_ in ("nummod", "quantmod") or (
            child.tag_ == "CD" and child.dep_ in ("amod", "compound")
        ):
            if low == "few":
                return _with_article(doc, child), end, None, 2
            value = number_value(child)
            if value is None:
                continue
            bounded = _bounded(doc, child, value)
            return None if bounded is None else (bounded[0], end, bounded[1], bounded[2])
        if child.dep_ in ("amod", "det", "predet", "advmod") and (low in _EXACT_WORDS or low in _MIN_WORDS):
            start = _with_article(doc, child)
            if low in _EXACT_WORDS:
                if _EXACT_WORDS[low] == 1 and m.plural:
                    continue
                return start, end, _EXACT_WORDS[low], None
            if not m.plural:
                continue
            return start, end, None, _MIN_WORDS[low]
    # "a pair of skis", "a couple of dogs", "a group of people", "a herd of elephants"
    root = group_root(head)
    if root.dep_ == "pobj" and root.head.lower_ == "of" and root.head.head.lower_ in _GROUP_NOUNS:
        of = root.head
        quantity = of.head
        if any(c.dep_ == "nummod" for c in quantity.children) or quantity.i > root.i:
            return None
        value = _GROUP_NOUNS[quantity.lower_]
        if quantity.lower_ == "pair" and m.label in PAIRED_LABELS:
            return None  # a pair of skis is one "skis"
        start, end = quantity.left_edge.idx, of.idx + len(of.text)
        if value:
            return start, end, value, None
        return (start, end, None, 2) if m.plural else None
    return None


def _left_modifiers(doc: Any, m: Mention) -> list[Any]:
    """Children before the mention of any of its words ("Two" may hang on "teddy" in "Two teddy bears")."""
    return [c for i in range(m.first, m.last + 1) for c in doc[i].children if c.i < m.first]


def _with_article(doc: Any, token: Any) -> int:
    """Start of "a few"/"a single": include the article right before the quantifier."""
    if token.i > 0 and doc[token.i - 1].lower_ in ("a", "an", "the"):
        return doc[token.i - 1].idx
    return token.idx


def _bounded(doc: Any, number: Any, value: int) -> tuple[int, int | None, int | None] | None:
    """Apply "at least", "more than", "over", "about" ... to a number; ``None`` when approximate."""
    words = [t for t in number.subtree if t.i < number.i]
    lows = [t.lower_ for t in words]
    start = words[0].idx if words else number.idx
    if "least" in lows:
        return start, None, value
    if "more" in lows or "over" in lows:
        return start, None, value + 1
    if any(w in _APPROXIMATE or w in ("than", "most", "fewer", "less") for w in lows):
        return None
    if number.i > 0 and doc[number.i - 1].lower_ in _APPROXIMATE | {"than"}:
        return None
    return start, value, None


# ---------------------------------------------------------------------- colours


def colour_of(token: Any) -> str | None:
    """The canonical colour (one of :data:`COLOURS`) a token names, or ``None``."""
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


def _attributes(doc: Any, m: Mention, text: str) -> list[Claim]:
    if m.label == "person":
        return []
    head = doc[m.last]
    out: list[Claim] = []
    for child in _left_modifiers(doc, m):
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
    if head.dep_ in ("nsubj", "nsubjpass") and head.head.lower_ in _BE:
        for child in head.head.children:
            if child.dep_ in ("acomp", "attr") and colour_of(child) and _single_colour(child):
                if any(c.dep_ == "neg" for c in head.head.children):
                    continue
                end = child.idx + len(child.text)
                out.append(
                    Claim(text[m.start : end], m.start, end, "attribute", m.label, attribute=colour_of(child))
                )
    return out


def _antecedent(token: Any, mentions: list[Mention], exclude: Mention | None = None) -> Mention | None:
    """The mention a pronoun refers to: the most recent subject of this or the previous sentence
    that fits (number, person or not), else the most recent fitting mention; never ``exclude``
    (the pronoun's own clause subject: "a dog runs behind it" is not about the dog)."""
    kind = _PRONOUNS.get(token.lower_)
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


def _pronoun_attributes(doc: Any, mentions: list[Mention], text: str) -> list[Claim]:
    out: list[Claim] = []
    for token in doc:
        if token.dep_ != "nsubj" or token.lower_ not in ("it", "they") or token.head.lower_ not in _BE:
            continue
        if any(c.dep_ == "neg" for c in token.head.children):
            continue
        antecedent = _antecedent(token, mentions)
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


# ---------------------------------------------------------------------- relations


def relation_phrase(pobj: Any) -> tuple[str, Any] | None:
    """``(relation, first token)`` when ``pobj`` is the object of a spatial preposition.

    Handles "on", "under", ... and the multi-word "to the left of", "on the right side of",
    "on top of", "in front of", "in back of", "next to", "close to".
    """
    if pobj.dep_ != "pobj":
        return None
    prep = pobj.head
    low = prep.lower_
    if low in _SIMPLE_RELATIONS:
        return _SIMPLE_RELATIONS[low], prep
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
    if attach.tag_ in _NOUN_TAGS or attach.lower_ in _PRONOUNS:
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


def _relations(doc: Any, mentions: list[Mention], by_head: dict[int, Mention], text: str) -> list[Claim]:
    out: list[Claim] = []
    for token in doc:
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
    if token.lower_ in _PRONOUNS and token.dep_ != "poss":
        antecedent = _antecedent(token, mentions, exclude)
        if antecedent is not None:
            return antecedent.label, token.idx, token.idx + len(token.text), antecedent
    return None
