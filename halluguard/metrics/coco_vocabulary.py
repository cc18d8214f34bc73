"""The CHAIR vocabulary: the 80 COCO classes, their synonyms, and how a caption names them.

This is the one place that knows which words in a caption are COCO objects. CHAIR uses it, and so
can anything else that needs the same answer (the post-hoc corrector, for instance).

>>> [(m.word, m.label, m.start, m.end) for m in find_mentions("Two hot dogs and a puppy.")]
[('hot dog', 'hot dog', 4, 12), ('puppy', 'dog', 19, 24)]
>>> canonical("kitten"), canonical("teddybear"), canonical("sky")
('cat', 'teddy bear', None)
>>> singularize("knives"), singularize("buses"), singularize("glasses"), singularize("ponies")
('knife', 'bus', 'glass', 'pony')

Two sets of rules, the same steps (Rohrbach et al. 2018, the ``chair.py`` of LisaAnne/Hallucination,
Maxlinn/CHAIR-metric-standalone and OPERA, lines 200-236 of Maxlinn's):

1. **Tokenize** the lower-cased caption.
2. **Singularise** every token.
3. **Two-word objects**: scanning left to right, a pair of singular tokens found in the double-word table
   becomes one word: "hot dog", "teddy bear", "traffic light", ... Qualifier pairs map to the animal or
   vehicle: "baby elephant" -> elephant, "adult giraffe" -> giraffe, "passenger train" -> train (so they
   do not count as a person); "bow tie" -> tie, "toilet seat" -> toilet; "home plate" and "train track"
   absorb the second word and name nothing; "wine glas" (the official singulariser's "wine glass")
   -> wine glass.
4. If a caption mentions a toilet, no "seat" in it counts as a chair.
5. Every remaining word in the synonym table is a mention of its class (duplicates are kept: CHAIR_i
   counts mentions).

``standard=True`` (what CHAIR computes by default) is the official script token for token:
NLTK's ``word_tokenize`` and ``pattern.en.singularize`` (:mod:`.official_text`) and the official synonym
table as published (``halluguard/data/chair_synonyms.txt``), quirks included: "chairs/stools" and
"bench'smid" are one token each and name nothing, a singular "bus" is never counted ("bu"), neither are
"motor bike", "cheesecake" or "iPhone".

``standard=False`` (the corrector's rules, and CHAIR's named option ``rules="corrected"``) fixes those:

- **tokens** (:func:`tokenize`): a run of letters/digits, optionally joined by hyphens; every other
  character is a token of its own, so "chairs/stools" is two objects and "bench's" a bench;
- **singular** (:func:`singularize`): English plural rules and an irregular-noun table ("bus" stays "bus");
- **synonyms** (``halluguard/data/coco_synonyms.txt``): the official table with its stray spaces, repeated
  words and the capital of "iPhone" fixed, so "motor bike", "cheesecake" and "iphone" count.

Neither set needs downloaded data, so results do not depend on what NLTK data is installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

__all__ = [
    "COCO_CLASSES",
    "Mention",
    "Token",
    "canonical",
    "caption_to_objects",
    "double_words",
    "find_mentions",
    "singularize",
    "synonyms",
    "tokenize",
]


# --------------------------------------------------------------------------- synonym table


@lru_cache(maxsize=1)
def _official_table() -> dict[str, str]:
    """The official script's word -> class map, parsed as it parses it (``s.strip().split(', ')``)."""
    text = resources.files("halluguard").joinpath("data/chair_synonyms.txt").read_text(encoding="utf-8")
    lines = [""] + [line for line in text.splitlines() if not line.startswith("#")]  # its leading empty line
    mapping: dict[str, str] = {}
    for synonyms_of_class in (line.strip().split(", ") for line in lines):
        for word in synonyms_of_class:
            mapping[word] = synonyms_of_class[0]  # a word listed twice belongs to its last line
    return mapping


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, ...], dict[str, str]]:
    text = resources.files("halluguard").joinpath("data/coco_synonyms.txt").read_text(encoding="utf-8")
    classes: list[str] = []
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = [w.strip().lower() for w in line.split(",") if w.strip()]
        classes.append(words[0])
        for word in words:
            mapping.setdefault(word, words[0])
    return tuple(classes), mapping


def synonyms() -> dict[str, str]:
    """Every vocabulary word (singular, lower-case) -> its COCO class. A copy: safe to modify."""
    return dict(_table()[1])


def canonical(word: str) -> str | None:
    """The COCO class a word (or two-word phrase) names, or ``None``. Plurals are singularised.

    >>> canonical("Motorbikes"), canonical("dining table"), canonical("giraffe")
    ('motorcycle', 'dining table', 'giraffe')
    """
    mapping = _table()[1]
    word = " ".join(word.lower().split())
    if word in mapping:
        return mapping[word]
    parts = word.split(" ")
    parts[-1] = singularize(parts[-1])
    return mapping.get(" ".join(parts))


#: The 80 COCO class names, in the table's (COCO's) order.
COCO_CLASSES: tuple[str, ...] = _table()[0]


# --------------------------------------------------------------------------- double words

_DOUBLE_OBJECTS = (
    "motor bike", "motor cycle", "air plane", "traffic light", "street light", "traffic signal",
    "stop light", "fire hydrant", "stop sign", "parking meter", "suit case", "sports ball",
    "baseball bat", "baseball glove", "tennis racket", "wine glass", "hot dog", "cell phone",
    "mobile phone", "teddy bear", "hair drier", "potted plant", "bow tie", "laptop computer",
    "stove top oven", "home plate", "train track",
)  # fmt: skip
_ANIMALS = (
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "animal",
    "cub",
)
_VEHICLES = ("jet", "train")


@lru_cache(maxsize=1)
def _double_words() -> dict[str, str]:
    table = {w: w for w in _DOUBLE_OBJECTS}
    for animal in _ANIMALS:
        table[f"baby {animal}"] = animal
        table[f"adult {animal}"] = animal
    for vehicle in _VEHICLES:
        table[f"passenger {vehicle}"] = vehicle
    table["bow tie"] = "tie"
    table["toilet seat"] = "toilet"
    table["wine glas"] = "wine glass"  # what the standard singulariser makes of "wine glass"
    return table


def double_words() -> dict[str, str]:
    """The two-word table: singular pair -> the word it counts as. A copy: safe to modify."""
    return dict(_double_words())


# --------------------------------------------------------------------------- tokenizer

_TOKEN = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:-[^\W_]+)*|'[^\W_]*|[^\w\s]|_", re.UNICODE)


class Token(NamedTuple):
    """One token: ``text`` lower-cased, ``start``/``end`` character offsets into the original."""

    text: str
    start: int
    end: int

    @property
    def is_word(self) -> bool:
        return self.text[:1].isalnum()


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into lower-cased tokens with offsets (see the module docstring).

    >>> [t.text for t in tokenize("A dog's T-shirt, 3.5 m.")]
    ['a', 'dog', "'s", 't-shirt', ',', '3.5', 'm', '.']
    """
    return [Token(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


# --------------------------------------------------------------------------- singulariser

_IRREGULAR = {
    "people": "person", "persons": "person", "mice": "mouse", "geese": "goose", "feet": "foot",
    "teeth": "tooth", "oxen": "ox", "dice": "die", "lice": "louse", "cacti": "cactus", "fungi": "fungus",
    "leaves": "leaf", "loaves": "loaf", "halves": "half", "calves": "calf", "shelves": "shelf",
    "wolves": "wolf", "scarves": "scarf", "thieves": "thief", "elves": "elf", "selves": "self",
    "hooves": "hoof", "lives": "life", "wives": "wife", "knives": "knife", "sheaves": "sheaf",
    "lenses": "lens", "gases": "gas", "canvases": "canvas", "atlases": "atlas", "octopuses": "octopus",
    "cactuses": "cactus", "walruses": "walrus", "circuses": "circus", "campuses": "campus",
    "viruses": "virus", "bonuses": "bonus", "statuses": "status", "choruses": "chorus",
    "taxis": "taxi", "skis": "ski", "kiwis": "kiwi", "bikinis": "bikini", "martinis": "martini",
    "safaris": "safari", "salamis": "salami", "paninis": "panini", "zucchinis": "zucchini",
    "buses": "bus", "busses": "bus", "minibuses": "minibus", "trolleybuses": "trolleybus",
    "canoes": "canoe", "toes": "toe", "hoes": "hoe", "oboes": "oboe", "tiptoes": "tiptoe",
    "movies": "movie", "cookies": "cookie", "brownies": "brownie", "selfies": "selfie",
    "smoothies": "smoothie", "calories": "calorie", "zombies": "zombie", "rookies": "rookie",
    "goalies": "goalie", "hippies": "hippie", "pixies": "pixie", "veggies": "veggie", "boonies": "boonie",
    "headaches": "headache", "mustaches": "mustache", "moustaches": "moustache", "niches": "niche",
    "quiches": "quiche", "cliches": "cliche", "avalanches": "avalanche", "caches": "cache",
}  # fmt: skip
# Suffixes that make compounds irregular too ("policemen", "grandchildren", "pocketknives").
_IRREGULAR_SUFFIX = (
    ("children", "child"), ("women", "woman"), ("men", "man"), ("knives", "knife"), ("wives", "wife"),
    ("shoes", "shoe"), ("buses", "bus"),
)  # fmt: skip
_NOT_MEN = {"specimen", "omen", "amen", "abdomen", "stamen", "semen", "regimen", "hymen", "acumen", "yemen"}
# Words that end in "s" but are not plurals (or whose plural is the same word).
_INVARIANT = {
    "sheep", "fish", "deer", "moose", "bison", "aircraft", "series", "species", "means", "news",
    "scissors", "pants", "jeans", "shorts", "clothes", "trousers", "goggles", "binoculars", "tongs",
    "pliers", "this", "is", "his", "has", "was", "as", "us", "yes", "its", "always",
    "perhaps", "sometimes", "besides", "towards", "afterwards", "whereas", "thus", "plus", "across",
    "less", "unless", "various", "numerous", "gas", "lens", "canvas", "atlas", "christmas", "texas",
    "pancreas", "kudos", "chaos", "cosmos", "ethos", "mathematics", "physics", "athletics", "gymnastics",
    "politics", "electronics", "graphics", "headquarters", "premises", "whiskers",
}  # fmt: skip
_SINGULAR_ENDINGS = ("ss", "us", "is", "ous", "'s")


@lru_cache(maxsize=8192)
def singularize(word: str) -> str:
    """The singular of a lower-case English noun; other words come back unchanged or harmlessly cut.

    Deterministic and data-free (no WordNet download), written to agree with
    ``pattern.en.singularize`` on the COCO vocabulary.

    >>> [singularize(w) for w in ["people", "policemen", "skis", "scissors", "benches", "cattle", "bus"]]
    ['person', 'policeman', 'ski', 'scissors', 'bench', 'cattle', 'bus']
    """
    if len(word) < 3 or word in _INVARIANT:
        return word
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix, singular in _IRREGULAR_SUFFIX:
        if word.endswith(suffix):
            if suffix == "men" and word in _NOT_MEN:
                break
            return word[: -len(suffix)] + singular
    if (
        word.endswith("s") and word[:-1] in _table()[1]
    ):  # the plural of a vocabulary word: "skis", "collies", "zebus"
        return word[:-1]
    if not word.endswith("s") or word.endswith(_SINGULAR_ENDINGS):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y" if len(word) > 4 else word[:-1]
    if word.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    if word.endswith("oes"):
        return word[:-2]
    return word[:-1]


# --------------------------------------------------------------------------- mentions


@dataclass(frozen=True)
class Mention:
    """A COCO object named in a caption.

    ``word`` is the (singular) vocabulary word or two-word phrase as matched, ``label`` its COCO class,
    and ``caption[start:end]`` the text that names it.
    """

    word: str
    label: str
    start: int
    end: int


def find_mentions(caption: str, standard: bool = False, tokens: list[Token] | None = None) -> list[Mention]:
    """Every COCO object mention in ``caption``, in order, duplicates kept (the CHAIR steps above).

    ``standard=True`` applies the official script's rules token for token (for figures comparable
    with published ones: it misses a singular "bus"); the default applies the corrected rules.
    ``tokens`` may pass ``tokenize(caption)`` if already computed (corrected rules only).

    >>> [(m.word, m.label) for m in find_mentions("A baby elephant near a toilet seat, and a man.")]
    [('elephant', 'elephant'), ('toilet', 'toilet'), ('man', 'person')]
    >>> [m.label for m in find_mentions("A bus.")], [m.label for m in find_mentions("A bus.", standard=True)]
    (['bus'], [])
    >>> [m.label for m in find_mentions("Chairs/stools by a bench's end.")]
    ['chair', 'chair', 'bench']
    >>> [m.label for m in find_mentions("Chairs/stools by a bench's end.", standard=True)]
    ['bench']
    """
    if standard:
        from halluguard.metrics import official_text

        mapping = _official_table()
        spans = official_text.token_spans(caption.lower())
        words = [(official_text.singularize(text), start, end) for text, start, end in spans]
    else:
        mapping = _table()[1]
        tokens = tokenize(caption) if tokens is None else tokens
        words = [(singularize(t.text), t.start, t.end) for t in tokens]
    doubles = _double_words()
    merged: list[tuple[str, int, int]] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words):
            pair = words[i][0] + " " + words[i + 1][0]
            if pair in doubles:
                merged.append((doubles[pair], words[i][1], words[i + 1][2]))
                i += 2
                continue
        merged.append(words[i])
        i += 1
    has_toilet = any(w == "toilet" for w, _, _ in merged)
    return [
        Mention(w, mapping[w], s, e)
        for w, s, e in merged
        if w in mapping and not (has_toilet and w == "seat")
    ]


def caption_to_objects(caption: str, standard: bool = False) -> list[str]:
    """The COCO classes a caption mentions, one entry per mention (see :func:`find_mentions`).

    >>> caption_to_objects("Two dogs chase a puppy past a stop sign.")
    ['dog', 'dog', 'stop sign']
    """
    return [m.label for m in find_mentions(caption, standard=standard)]
