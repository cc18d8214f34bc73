"""English word lists that claim extraction and rewriting share: one list per concept.

Colour words live with the colours themselves (:mod:`.colours`: :data:`~.colours.COLOURS`, their
synonyms and :data:`~.colours.COLOUR_SHADES`).

>>> "been" in BE, "been" in FINITE_BE
(True, False)
>>> sorted(RELATIONAL_NOUNS - PART_NOUNS)
['background', 'foreground']
"""

from __future__ import annotations

#: Penn tags of nouns, and of plural nouns
NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
PLURAL_NOUN_TAGS = frozenset({"NNS", "NNPS"})

#: forms of "be"
BE = frozenset({"is", "are", "was", "were", "be", "been", "being", "'s", "'re", "am"})
#: its finite forms, the ones that make a clause of their own ("there is a dog", "the cat is on the
#: bed"): what the rewriter's promotion, hedging and predicate tests look for
FINITE_BE = BE - {"be", "been", "being"}

#: words that say something is there ("the image shows", "is visible")
EXISTENCE_VERBS = frozenset(
    "see seen saw sees seeing show shows shown showing showed depict depicts depicted depicting contain "
    "contains contained containing include includes included including have has had having feature "
    "features featured featuring appear appears appeared appearing find found spot spotted notice noticed "
    "observe observed detect detected visible present exist exists".split()
)

#: pronoun -> what it can refer to ("it": one thing, "they": several, "person": one person)
PRONOUNS = {
    "it": "it", "its": "it", "itself": "it", "they": "they", "them": "they", "their": "they",
    "he": "person", "him": "person", "his": "person", "she": "person", "her": "person",
}  # fmt: skip

#: verbs that are also nouns, which the small English model reads as the second noun of a
#: compound after an object noun ("a fork lie next to the cup", "a remote lies on the couch")
#: when the sentence has no other verb; each maps to a stand-in verb of the same number
HOMOGRAPH_VERBS: dict[str, str] = {
    **{w: "sit" for w in "lie rest sit hang lean float fly sleep wait graze swim perch hover roam stand ski "
       "surf snowboard skateboard".split()},
    **{w: "sits" for w in "lies rests sits hangs leans floats flies sleeps waits grazes swims perches hovers "
       "roams stands skis surfs snowboards skateboards".split()},
}  # fmt: skip

# ---------------------------------------------------------------------- places and relations

#: canonical relation (the names :mod:`.verify` checks) -> how the rewriter writes it
RELATIONS: dict[str, str] = {
    "left of": "to the left of", "right of": "to the right of", "on": "on", "above": "above",
    "below": "below", "under": "under", "next to": "next to", "in front of": "in front of",
    "behind": "behind",
}  # fmt: skip
#: one-word spatial prepositions -> the canonical relation they state
RELATION_PREPOSITIONS = {
    "on": "on", "onto": "on", "upon": "on", "atop": "on", "above": "above", "over": "above",
    "below": "below", "beneath": "under", "under": "under", "underneath": "under", "beside": "next to",
    "alongside": "next to", "near": "next to", "behind": "behind",
}  # fmt: skip
#: prepositions of place: a phrase they head after a removed object says where the rest is ("two cats
#: and a dog on a bed", "parked next to a meter on a quiet street") and stays
PLACE_PREPOSITIONS = frozenset(
    "on in at under inside outside atop along across behind beneath underneath near beside by against "
    "over above below around among between within upon onto into".split()
)
#: nouns of "the left of", "the top of", "the side of": part of a longer preposition
RELATIONAL_NOUNS = frozenset(
    "left right top front back side middle center centre edge corner end bottom rear background "
    "foreground".split()
)
#: nouns of place whose "of" phrase can go when the place phrase cannot ("in the middle of the bench"):
#: the relational nouns that name a part of their object (not "the background of")
PART_NOUNS = RELATIONAL_NOUNS - {"background", "foreground"}
