"""Which nouns name which detector class.

A :class:`Vocabulary` maps surface nouns (singular or plural, one or several words) to canonical
detector labels. The default, :meth:`Vocabulary.coco`, targets the 80 COCO classes exactly as
ultralytics YOLO names them ("person", "dining table", "cell phone", "tv", "hair drier", ...):

1. the standard CHAIR synonym table (``halluguard/data/coco_synonyms.txt``, shared with
   :mod:`halluguard.metrics.coco_vocabulary`) and its two-word objects;
2. a few hand-written additions (``EXTRA_SYNONYMS``: "mug" -> cup, "microwave oven" ->
   microwave, ...) and phrases whose last word names a class but which are not that object
   (``NOT_OBJECTS``: "car seat", "train track", ...);
3. WordNet hyponyms of each class's synsets: "puppy" -> dog, "sedan" -> car, "skier" -> person
   (rules in :func:`~halluguard.correctors.wordnet.wordnet_hyponyms`).

The whole table ships precomputed (``halluguard/data/coco_vocabulary.json``, about 10,000
phrases), so every machine corrects alike and WordNet is never read at run time;
``python -m halluguard.correctors.wordnet --write`` rebuilds it. :meth:`Vocabulary.with_wordnet`
adds the hyponyms of other synsets (needs NLTK and WordNet).

Other label sets (a lab world, a custom detector) start from :meth:`Vocabulary.empty` or a JSON
file ``{"label": ["synonym", ...], "_not_objects": ["phrase", ...]}``:

>>> vocab = Vocabulary.empty().extend({"circle": ["ring", "disc"], "moon": ["crescent"]})
>>> vocab.lookup("rings"), vocab.lookup("crescent moon"), vocab.lookup("moon"), vocab.lookup("sun")
('circle', None, 'moon', None)
>>> coco = Vocabulary.coco()
>>> coco.lookup("Teddy Bears"), coco.lookup("people"), coco.lookup("limousine"), coco.lookup("car seat")
('teddy bear', 'person', 'car', None)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from halluguard.correctors.wordnet import COCO_SYNSETS, DENIED_HYPONYMS
from halluguard.metrics.coco_vocabulary import double_words, singularize, synonyms

__all__ = ["COCO_SYNSETS", "DENIED_HYPONYMS", "EXTRA_SYNONYMS", "NOT_OBJECTS", "SHIPPED_VOCABULARY",
           "Vocabulary", "pluralize", "singularize"]

Table = Mapping[str, str | Iterable[str]]

#: Hand-written additions to the CHAIR table (words a detector's class covers).
EXTRA_SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": ("persons", "men", "women", "surfer", "pedestrian", "spectator", "toddler", "infant",
               "umpire", "catcher", "batter", "cyclist", "motorcyclist", "tourist", "vendor",
               "tennis player", "skiers", "individual", "athlete", "referee", "customer", "girlfriend",
               "boyfriend", "husband", "wife", "daughter", "son", "brother", "grandmother",
               "grandfather", "kids", "teen", "youngster", "onlooker", "cook", "waiter", "waitress"),
    "bicycle": ("push bike",),
    "car": ("taxi cab", "sports car", "police car"),
    "motorcycle": ("dirt bike",),
    "boat": ("jet ski", "jetski", "jet skis"),
    "airplane": ("airliner", "aeroplane"),
    "bus": ("double decker", "double-decker", "trolleybus"),
    "train": ("tram", "train car", "subway train", "streetcar"),
    "truck": ("fire engine",),
    "cat": ("kitty", "kitties"),
    "dog": ("puppies", "doggies"),
    "sheep": ("lambs",),
    "cow": ("cows", "calves", "bulls"),
    "bear": ("grizzly", "polar bear", "grizzly bear"),
    "handbag": ("hand bag", "clutch"),
    "suitcase": ("suitcases",),
    "skis": ("ski",),
    "sports ball": ("soccer ball", "tennis ball", "volleyball", "basketball ball"),
    "baseball glove": ("baseball mitt", "mitt"),
    "skateboard": ("skate board",),
    "surfboard": ("surf board",),
    "snowboard": ("snow board",),
    "tennis racket": ("tennis racquet", "racquet"),
    "wine glass": ("wineglass",),
    "cup": ("mug", "teacup", "coffee mug"),
    "hot dog": ("hotdog",),
    "chair": ("armchair", "highchair", "high chair"),
    "potted plant": ("house plant", "pot plant"),
    "dining table": ("kitchen table", "coffee table"),
    "tv": ("television set", "tv set", "flat screen tv"),
    "mouse": ("computer mouse",),
    "remote": ("remote control", "tv remote"),
    "keyboard": ("computer keyboard",),
    "laptop": ("laptop keyboard", "laptop screen", "laptop computer"),  # a laptop's part: the laptop is there
    "cell phone": ("smart phone", "mobile phone", "cellular phone"),
    "microwave": ("microwave oven",),
    "toaster": ("toaster oven",),
    "refrigerator": ("refridgerator",),
    "teddy bear": ("teddy",),
    "hair drier": ("hair dryer", "blow dryer", "blow drier", "hairdrier"),
    "toothbrush": ("tooth brush",),
}  # fmt: skip

#: Phrases with a class's word that are not that object ("car seat", "zebra crossing").
NOT_OBJECTS: tuple[str, ...] = (
    "car seat", "booster seat", "bike seat", "bicycle seat", "motorcycle seat", "back seat", "front seat",
    "passenger seat", "driver seat", "toilet seat cover", "train track", "home plate", "cable car",
    "bird 's eye", "birds eye", "bird eye", "computer screen", "phone screen", "table top", "tabletop",
    "table cloth", "dog house", "doghouse", "ski lift", "chair lift", "teddy bear picnic",
    "zebra crossing", "zebra print", "zebra stripes", "dog bed", "cat bed", "hot dog stand", "horse trailer",
)  # fmt: skip

#: the precomputed COCO vocabulary (:meth:`Vocabulary.to_json` format; rebuilt by ``python -m
#: halluguard.correctors.wordnet --write``)
SHIPPED_VOCABULARY = Path(__file__).resolve().parents[1] / "data" / "coco_vocabulary.json"

_PLURAL_IRREGULAR = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "foot": "feet", "tooth": "teeth", "goose": "geese", "ox": "oxen", "knife": "knives",
    "leaf": "leaves", "calf": "calves", "wife": "wives", "shelf": "shelves", "wolf": "wolves",
    "sheep": "sheep", "deer": "deer", "fish": "fish", "skis": "skis", "scissors": "scissors",
    "bison": "bison", "aircraft": "aircraft", "broccoli": "broccoli", "cattle": "cattle",
    "luggage": "luggage", "bus": "buses", "taxi": "taxis", "ski": "skis", "tv": "tvs",
    "photo": "photos", "piano": "pianos", "radio": "radios", "kangaroo": "kangaroos",
    "half": "halves", "loaf": "loaves", "thief": "thieves", "scarf": "scarves", "axis": "axes",
    "echo": "echoes", "veto": "vetoes", "torpedo": "torpedoes", "titmouse": "titmice", "stomach": "stomachs",
    "monarch": "monarchs", "epoch": "epochs", "eunuch": "eunuchs", "patriarch": "patriarchs",
    "species": "species", "series": "series", "news": "news",
}  # fmt: skip


@functools.lru_cache(maxsize=1 << 16)
def _singular(word: str) -> str:
    """:func:`singularize`, remembered (it runs on every word of every answer)."""
    return singularize(word)


def pluralize(noun: str) -> str:
    """The plural of an English noun (last word of a phrase), keeping its capitalisation.

    >>> pluralize("dog"), pluralize("bus"), pluralize("Knife"), pluralize("teddy bear"), pluralize("person")
    ('dogs', 'buses', 'Knives', 'teddy bears', 'people')
    >>> pluralize("giraffe"), pluralize("half"), pluralize("SUV"), pluralize("safe"), pluralize("crisis")
    ('giraffes', 'halves', 'SUVs', 'safes', 'crises')
    """
    head, sep, last = noun.rpartition(" ")
    lower = last.lower()
    if last.isupper() and len(last) > 1 and lower not in _PLURAL_IRREGULAR:  # an initialism: "SUVs", "TVs"
        return head + sep + last + "s"
    if lower in _PLURAL_IRREGULAR:
        plural = _PLURAL_IRREGULAR[lower]
    elif lower.endswith(("man",)) and lower not in ("german", "human", "shaman", "talisman"):
        plural = lower[:-3] + "men"
    elif lower.endswith("sis") and len(lower) > 4:  # crisis -> crises, oasis -> oases
        plural = lower[:-2] + "es"
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        plural = lower + "es"
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        plural = lower[:-1] + "ies"
    elif lower.endswith("ife"):  # knife -> knives, wife -> wives (but safes, cafes, carafes, giraffes)
        plural = lower[:-2] + "ves"
    elif lower.endswith("o") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        plural = lower + "es" if lower in ("potato", "tomato", "hero", "mango") else lower + "s"
    else:
        plural = lower + "s"
    if last.isupper() and len(last) > 1:
        plural = plural.upper()
    elif last[:1].isupper():
        plural = plural[:1].upper() + plural[1:]
    return head + sep + plural


def normalise(phrase: str) -> str:
    """Lower case, hyphens and underscores as spaces, single spaces: how phrases are keyed."""
    return " ".join(phrase.lower().replace("-", " ").replace("_", " ").split())


class Vocabulary:
    """Surface phrase -> detector label. ``None`` marks a phrase that is known not to be an object.

    Phrases are lower-case, words separated by single spaces (hyphens count as spaces). A lookup
    tries the phrase as written, then with its last word singularised.
    """

    def __init__(self, table: Table | None = None, not_objects: Iterable[str] = ()):
        self._entries: dict[str, str | None] = {}
        self._last_words: set[str] = set()  # last word of every phrase: a fast first filter
        self._first_words: set[str] = set()  # first word of every phrase of several words
        self._labels: set[str] = set()
        self.max_words = 1
        self.wordnet_used = False
        if table:
            self.extend(table)
        self.ignore(not_objects)

    # ------------------------------------------------------------------ building

    @classmethod
    def empty(cls) -> Vocabulary:
        """A vocabulary with no words: build a custom label set with :meth:`extend`."""
        return cls()

    @classmethod
    def coco(cls, wordnet: bool = True) -> Vocabulary:
        """The 80 COCO classes (ultralytics names), read from the shipped file (no WordNet needed).

        ``wordnet=False``: the hand tables alone (CHAIR + additions, about 560 phrases), without
        the precomputed WordNet hyponyms.
        """
        if wordnet is False:
            return coco_tables()
        vocab = cls()
        for phrase, label in _shipped_entries():
            vocab._set(phrase, label)
        vocab.wordnet_used = True
        return vocab

    @classmethod
    def default(cls) -> Vocabulary:
        """The shared default: :meth:`coco`, read once per process (do not modify it: :meth:`copy` it)."""
        return _default_coco()

    def with_wordnet(self, class_synsets: Mapping[str, Sequence[str]]) -> Vocabulary:
        """A copy extended with the WordNet hyponyms of ``{label: [synset name, ...]}``.

        Phrases already known keep their meaning. Needs NLTK and WordNet (``RuntimeError``
        saying how to install them otherwise). For example
        ``Vocabulary.empty().with_wordnet({"fox": ["fox.n.01"]}).lookup("fennec")`` is ``"fox"``.
        """
        from halluguard.correctors.wordnet import require_wordnet, wordnet_hyponyms

        require_wordnet()
        vocab = self.copy()
        for word, label in wordnet_hyponyms(class_synsets).items():
            if vocab.lookup(word) is None and normalise(word) not in vocab._entries:
                vocab.add(word, label)
        vocab.wordnet_used = True
        return vocab

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], base: Vocabulary | None = None) -> Vocabulary:
        """Read ``{"label": ["synonym", ...], "_not_objects": [...]}`` from a JSON file.

        The result extends a copy of ``base`` (empty when ``None``).
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(
                f"cannot read vocabulary file {path}: {error}. Expected JSON like "
                '{"circle": ["circles", "ring"], "_not_objects": ["ring road"]}'
            ) from error
        if not isinstance(data, dict):
            raise ValueError(f"vocabulary file {path}: expected a JSON object label -> list of synonyms")
        vocab = base.copy() if base is not None else cls()
        ignored = data.pop("_not_objects", [])
        vocab.extend(data)
        vocab.ignore(ignored)
        return vocab

    def copy(self) -> Vocabulary:
        other = Vocabulary()
        other._entries = dict(self._entries)
        other._last_words = set(self._last_words)
        other._first_words = set(self._first_words)
        other._labels = set(self._labels)
        other.max_words = self.max_words
        other.wordnet_used = self.wordnet_used
        return other

    def add(self, phrase: str, label: str) -> Vocabulary:
        """Map one phrase (and its plural) to ``label``; the label names itself too."""
        self._set(phrase, label)
        self._set(label, label) if normalise(label) not in self._entries else None
        return self

    def extend(self, table: Table) -> Vocabulary:
        """Add ``{label: [synonym, ...]}`` (or ``{label: "synonym"}``). Returns ``self``.

        >>> Vocabulary().extend({"moon": ["crescent", "half moon"]}).lookup("half moons")
        'moon'
        """
        if not isinstance(table, Mapping):
            raise TypeError("Vocabulary.extend expects a mapping label -> list of synonyms")
        for label, words in table.items():
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"vocabulary label must be a non-empty string, got {label!r}")
            if isinstance(words, str):
                words = [words]
            self.add(label, label)
            for word in words:
                if not isinstance(word, str):
                    raise ValueError(f"synonyms of {label!r} must be strings, got {word!r}")
                self.add(word, label)
        return self

    def ignore(self, phrases: Iterable[str]) -> Vocabulary:
        """Mark phrases as not objects ("car seat"), so their last word is not matched alone."""
        for phrase in phrases:
            self._set(phrase, None)
        return self

    def _set(self, phrase: str, label: str | None) -> None:
        key = normalise(phrase)
        if not key:
            return
        self._entries[key] = label
        self._last_words.add(key.rsplit(" ", 1)[-1])
        if " " in key:
            self._first_words.add(key.split(" ", 1)[0])
        if label is not None:
            self._labels.add(label)
        self.max_words = max(self.max_words, key.count(" ") + 1)

    # ------------------------------------------------------------------ lookups

    @property
    def labels(self) -> frozenset[str]:
        """The detector labels this vocabulary can produce."""
        return frozenset(self._labels)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, phrase: object) -> bool:
        return isinstance(phrase, str) and self.lookup(phrase) is not None

    def starts_phrase(self, word: str) -> bool:
        """Whether a phrase of several words starts with the lower-case ``word``."""
        return word in self._first_words

    def entry(self, words: Sequence[str]) -> tuple[bool, str | None]:
        """``(known, label)`` for a phrase given as lower-case words; ``known`` with ``None``
        means "explicitly not an object"."""
        if len(words) > 1 and words[0] not in self._first_words:
            return False, None
        last = words[-1]
        single = _singular(last)
        if last not in self._last_words and (single == last or single not in self._last_words):
            return False, None
        key = " ".join(words)
        if key in self._entries:
            return True, self._entries[key]
        if single != last:
            key = " ".join((*words[:-1], single))
            if key in self._entries:
                return True, self._entries[key]
        return False, None

    def lookup(self, phrase: str) -> str | None:
        """The label of a phrase ("Puppies" -> "dog"), or ``None``."""
        key = normalise(phrase)
        return self.entry(key.split(" "))[1] if key else None

    def synonyms_of(self, label: str) -> list[str]:
        """Every phrase that maps to ``label``, sorted."""
        return sorted(k for k, v in self._entries.items() if v == label)

    def to_json(self) -> dict[str, list[str]]:
        """``{label: [phrases]}`` plus ``"_not_objects"``: what :meth:`from_file` reads."""
        out: dict[str, list[str]] = {}
        for phrase, label in sorted(self._entries.items()):
            out.setdefault(label if label is not None else "_not_objects", []).append(phrase)
        return out

    def dumps(self) -> str:
        """:meth:`to_json` as the text :meth:`save` writes (sorted, one phrase a line)."""
        return json.dumps(self.to_json(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    def digest(self) -> str:
        """A short hash of the content: a resumed ``fix`` must use the same vocabulary."""
        return hashlib.sha1(self.dumps().encode("utf-8")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Vocabulary({len(self._labels)} labels, {len(self._entries)} phrases)"


def coco_tables() -> Vocabulary:
    """The COCO vocabulary of the hand tables alone: CHAIR synonyms and two-word objects,
    :data:`EXTRA_SYNONYMS`, :data:`NOT_OBJECTS` (what the WordNet hyponyms are added to)."""
    vocab = Vocabulary()
    table = synonyms()
    for word, label in table.items():
        vocab.add(word, label)
    for phrase, word in double_words().items():
        label = table.get(word)
        if label is not None:
            vocab.add(phrase, label)
        elif phrase not in vocab._entries:
            vocab._set(phrase, None)  # "home plate", "train track": absorb the pair
    for label, words in EXTRA_SYNONYMS.items():
        for word in (label, *words):
            vocab.add(word, label)
    return vocab.ignore(NOT_OBJECTS)


@functools.cache
def _shipped_entries() -> tuple[tuple[str, str | None], ...]:
    """(phrase, label) pairs of the shipped file, read once per process (immutable)."""
    data = json.loads(SHIPPED_VOCABULARY.read_text(encoding="utf-8"))
    return tuple((phrase, None if label == "_not_objects" else label)
                 for label, phrases in data.items() for phrase in phrases)


@functools.cache
def _default_coco() -> Vocabulary:
    return Vocabulary.coco()
