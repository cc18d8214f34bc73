"""The CHAIR vocabulary: the 80 COCO classes, their synonyms, and how a caption names them.

This is the one place that knows which words in a caption are COCO objects. CHAIR uses it, and so
can anything else that needs the same answer (the post-hoc corrector, for instance).

>>> [(m.word, m.label, m.start, m.end) for m in find_mentions("Two hot dogs and a puppy.")]
[('hot dog', 'hot dog', 4, 12), ('puppy', 'dog', 19, 24)]
>>> canonical("kitten"), canonical("teddybear"), canonical("sky")
('cat', 'teddy bear', None)
>>> singularize("knives"), singularize("buses"), singularize("glasses"), singularize("ponies")
('knife', 'bus', 'glass', 'pony')

How a caption becomes objects (the standard CHAIR rules of Rohrbach et al. 2018, as in the widely
used ``chair.py`` of the LisaAnne/Hallucination and OPERA repositories):

1. **Tokenize** (:func:`tokenize`): a deterministic regular expression, no downloaded data. A token is a
   run of letters/digits, optionally joined by hyphens ("t-shirt" is one token, as in NLTK's
   ``word_tokenize``); a number with a decimal point is one token; an apostrophe suffix ("'s") and every
   punctuation mark are tokens of their own, so that two words on either side of a comma or full stop
   never form a two-word object. Tokens are lower-cased; each keeps its character offsets.
2. **Singularise**, with no downloaded data, in one of two ways:

   - :func:`singularize_standard` (``standard=True``, what CHAIR uses by default): a re-statement of
     ``pattern.en.singularize``, the singulariser of the standard script, quirks included ("bus" -> "bu",
     so a single bus is never counted; "ties" -> "ty"). Published CHAIR figures depend on it.
   - :func:`singularize` (the default here, for correcting answers): English plural rules plus an
     irregular-noun table ("buses" -> "bus", "knives" -> "knife", "scissors" stays).

   Neither consults WordNet, so results do not depend on what NLTK data is installed.
3. **Two-word objects**: scanning left to right, a pair of singular tokens found in the double-word table
   becomes one word: "hot dog", "teddy bear", "traffic light", ... Qualifier pairs map to the animal or
   vehicle: "baby elephant" -> elephant, "adult giraffe" -> giraffe, "passenger train" -> train (so they
   do not count as a person); "bow tie" -> tie, "toilet seat" -> toilet; "home plate" and "train track"
   absorb the second word and name nothing; "wine glas" (the standard singulariser's "wine glass")
   -> wine glass.
4. If a caption mentions a toilet, no "seat" in it counts as a chair.
5. Every remaining word in the synonym table is a mention of its class (duplicates are kept: CHAIR_i
   counts mentions).

The synonym table is ``halluguard/data/coco_synonyms.txt`` (the standard table, see its header).
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
    "singularize_standard",
    "synonyms",
    "tokenize",
]


# --------------------------------------------------------------------------- synonym table


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
    "home plate", "train track",
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


# The standard script's singulariser. CHAIR numbers in papers come from ``pattern.en.singularize``
# (BSD licence; its rules adapted from Bermi Ferrer's Inflector), quirks included: it strips the "s" of
# singular nouns ("bus" -> "bu", "glass" -> "glas", "tennis" -> "tenni") and turns "ties" into "ty".
# The tables below re-state its behaviour (rule order matters: the first match wins).
_STD_UNINFLECTED = (
    "bison bream breeches britches carp chassis christmas clippers cod contretemps corps debris diabetes "
    "djinn eland elk flounder gallows georgia graffiti headquarters herpes high-jinks homework innings "
    "jackanapes mackerel measles mews mumps news pincers pliers proceedings rabies salmon scissors series "
    "shears species swine swiss trout tuna whiting wildebeest advice bread butter cheese electricity "
    "equipment fruit furniture garbage gravel happiness information ketchup knowledge love luggage "
    "mathematics mayonnaise meat mustard progress research rice sand software understanding water"
).split()
# A word that is the ending of one of these is left alone ("scissors", but also "ice" from "rice").
_STD_KEEP = frozenset(w[i:] for w in _STD_UNINFLECTED for i in range(len(w)))
_STD_IE = (
    "algerie auntie beanie birdie bogie bombie bookie collie cookie cutie doggie eyrie freebie goonie "
    "groupie hankie hippie hoagie hottie indie junkie laddie laramie lingerie meanie nightie oldie pixie "
    "quickie reverie rookie softie sortie stoolie sweetie techie toughie valkyrie veggie weenie yuppie zombie"
).split()
_STD_IRREGULAR = (
    ("men", "man"), ("people", "person"), ("children", "child"), ("sexes", "sex"), ("axes", "axe"),
    ("moves", "move"), ("teeth", "tooth"), ("geese", "goose"), ("feet", "foot"), ("zoa", "zoon"),
    ("atlantes", "atlas"), ("atlases", "atlas"), ("beeves", "beef"), ("brethren", "brother"),
    ("corpora", "corpus"), ("corpuses", "corpus"), ("kine", "cow"), ("ephemerides", "ephemeris"),
    ("ganglia", "ganglion"), ("genii", "genie"), ("genera", "genus"), ("graffiti", "graffito"),
    ("helves", "helve"), ("leaves", "leaf"), ("loaves", "loaf"), ("monies", "money"),
    ("mongooses", "mongoose"), ("mythoi", "mythos"), ("octopodes", "octopus"), ("opera", "opus"),
    ("opuses", "opus"), ("oxen", "ox"), ("penes", "penis"), ("penises", "penis"),
    ("soliloquies", "soliloquy"), ("testes", "testis"), ("trilbys", "trilby"), ("turves", "turf"),
    ("numena", "numen"), ("occipita", "occiput"), ("our", "my"),
)  # fmt: skip
_STD_RULES = [
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"(.)ae$", r"\1a"), (r"(.)itis$", r"\1itis"), (r"(.)eaux$", r"\1eau"), (r"(quiz)zes$", r"\1"),
        (r"(matr)ices$", r"\1ix"), (r"(ap|vert|ind)ices$", r"\1ex"), (r"^(ox)en", r"\1"),
        (r"(alias|status)es$", r"\1"), (r"([octop|vir])i$", r"\1us"), (r"(cris|ax|test)es$", r"\1is"),
        (r"(shoe)s$", r"\1"), (r"(o)es$", r"\1"), (r"(bus)es$", r"\1"), (r"([m|l])ice$", r"\1ouse"),
        (r"(x|ch|ss|sh)es$", r"\1"), (r"(m)ovies$", r"\1ovie"), (r"(.)ombies$", r"\1ombie"),
        (r"(s)eries$", r"\1eries"), (r"([^aeiouy]|qu)ies$", r"\1y"), (r"([aeo]l)ves$", r"\1f"),
        (r"([^d]ea)ves$", r"\1f"), (r"arves$", "arf"), (r"erves$", "erve"), (r"([nlw]i)ves$", r"\1fe"),
        (r"([lr])ves$", r"\1f"), (r"([aeo])ves$", r"\1ve"), (r"(sive)s$", r"\1"), (r"(tive)s$", r"\1"),
        (r"(hive)s$", r"\1"), (r"([^f])ves$", r"\1fe"), (r"(^analy)ses$", r"\1sis"),
        (r"((a)naly|(b)a|(d)iagno|(p)arenthe|(p)rogno|(s)ynop|(t)he)ses$", r"\1\2sis"),
        (r"(.)opses$", r"\1opsis"), (r"(.)yses$", r"\1ysis"), (r"(h|d|r|o|n|b|cl|p)oses$", r"\1ose"),
        (r"(fruct|gluc|galact|lact|ket|malt|rib|sacchar|cellul)ose$", r"\1ose"), (r"(.)oses$", r"\1osis"),
        (r"([ti])a$", r"\1um"), (r"(n)ews$", r"\1ews"), (r"s$", ""),
    )
]  # fmt: skip


@lru_cache(maxsize=8192)
def singularize_standard(word: str) -> str:
    """What the standard CHAIR script's singulariser (``pattern.en.singularize``) makes of ``word``.

    Reproduced without the ``pattern`` package, quirks included, so that CHAIR figures agree with the
    published ones. Use :func:`singularize` for correct English.

    >>> [singularize_standard(w) for w in ["buses", "bus", "ties", "women", "glasses", "scissors"]]
    ['bus', 'bu', 'ty', 'woman', 'glass', 'scissors']
    """
    if word in _STD_KEEP:
        return word
    for ie in _STD_IE:
        if word.endswith(ie + "s"):
            return ie
    for plural, singular in _STD_IRREGULAR:
        if word.endswith(plural):
            return word[: -len(plural)] + singular
    for rule, replacement in _STD_RULES:
        m = rule.search(word)
        if m:
            # Unmatched groups expand to "" (as in the original).
            return word[: m.start()] + _expand(m, replacement) + word[m.end() :]
    return word


def _expand(m: re.Match[str], replacement: str) -> str:
    return re.sub(r"\\(\d)", lambda g: m.group(int(g.group(1))) or "", replacement)


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
    """Every COCO object mention in ``caption``, in order, duplicates kept (standard CHAIR rules).

    ``standard=True`` singularises as the standard CHAIR script does (:func:`singularize_standard`,
    for figures comparable with published ones: it misses a singular "bus"); the default uses correct
    English (:func:`singularize`). ``tokens`` may pass ``tokenize(caption)`` if already computed.

    >>> [(m.word, m.label) for m in find_mentions("A baby elephant near a toilet seat, and a man.")]
    [('elephant', 'elephant'), ('toilet', 'toilet'), ('man', 'person')]
    >>> [m.label for m in find_mentions("A bus.")], [m.label for m in find_mentions("A bus.", standard=True)]
    (['bus'], [])
    """
    mapping = _table()[1]
    doubles = _double_words()
    tokens = tokenize(caption) if tokens is None else tokens
    single = singularize_standard if standard else singularize
    words = [single(t.text) for t in tokens]
    merged: list[tuple[str, int, int]] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words):
            pair = words[i] + " " + words[i + 1]
            if pair in doubles:
                merged.append((doubles[pair], tokens[i].start, tokens[i + 1].end))
                i += 2
                continue
        merged.append((words[i], tokens[i].start, tokens[i].end))
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
