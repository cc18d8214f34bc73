"""English inflection for the rewriter: the hard cases (ours kept: benchmarks/inflection_vs_inflect.py)."""

from __future__ import annotations

import pytest

from halluguard.correctors.grammar import article_for, plural_noun, singular_noun, verb_plural, verb_singular


@pytest.mark.parametrize(
    "word,article",
    [("MRI", "an"), ("urinal", "a"), ("urban", "an"), ("unicorn", "a"), ("hour", "an"), ("UFO", "a"),
     ("SUV", "an"), ("X-ray", "an"), ("orange", "an"), ("red", "a"), ("umbrella", "an"), ("uniform", "a"),
     ("utensil", "a"), ("ukulele", "a"), ("European", "a"), ("ewe", "a"), ("one-way", "a"), ("onion", "an"),
     ("honest", "an"), ("heir", "an"), ("hotel", "a"), ("unimportant", "an"), ("unidentified", "an"),
     ("8", "an"), ("18-wheeler", "an"), ("11-year-old", "an"), ("80", "an"), ("1", "a"), ("100", "a"),
     ("Apple", "an"), ("Umbrella", "an"), ("houri", "a")],
)  # fmt: skip
def test_article(word: str, article: str) -> None:
    assert article_for(word) == article


@pytest.mark.parametrize(
    "singular,plural",
    [("half", "halves"), ("SUV", "SUVs"), ("giraffe", "giraffes"), ("person", "people"), ("ski", "skis"),
     ("skis", "skis"), ("mouse", "mice"), ("knife", "knives"), ("bus", "buses"), ("glass", "glasses"),
     ("sheep", "sheep"), ("species", "species"), ("gentleman", "gentlemen"), ("safe", "safes"),
     ("cafe", "cafes"), ("carafe", "carafes"), ("wife", "wives"), ("crisis", "crises"), ("axis", "axes"),
     ("thief", "thieves"), ("cattle", "cattle"), ("broccoli", "broccoli"), ("echo", "echoes"),
     ("potato", "potatoes"), ("photo", "photos"), ("child", "children"), ("Knife", "Knives"),
     ("teddy bear", "teddy bears"), ("box", "boxes"), ("cherry", "cherries"), ("toy", "toys")],
)  # fmt: skip
def test_plural(singular: str, plural: str) -> None:
    assert plural_noun(singular) == plural


@pytest.mark.parametrize(
    "plural,singular",
    [("halves", "half"), ("SUVs", "SUV"), ("giraffes", "giraffe"), ("people", "person"), ("skis", "ski"),
     ("mice", "mouse"), ("knives", "knife"), ("buses", "bus"), ("glasses", "glass"), ("sheep", "sheep"),
     ("species", "species"), ("TVs", "TV"), ("crises", "crisis"), ("quizzes", "quiz"), ("cookies", "cookie"),
     ("babies", "baby"), ("safes", "safe"), ("wives", "wife"), ("jeans", "jeans"), ("scissors", "scissors"),
     ("Dogs", "Dog"), ("children", "child"), ("teeth", "tooth"), ("bus", "bus"), ("lens", "lens")],
)  # fmt: skip
def test_singular(plural: str, singular: str) -> None:
    assert singular_noun(plural) == singular


@pytest.mark.parametrize("plural,singular", [("are", "is"), ("were", "was"), ("have", "has"), ("sit", "sits"),
                                             ("watch", "watches"), ("fly", "flies"), ("play", "plays")])
def test_verbs(plural: str, singular: str) -> None:
    assert verb_singular(plural) == singular and verb_plural(singular) == plural
