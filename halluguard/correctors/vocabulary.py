"""Which nouns name which detector class.

A :class:`Vocabulary` maps surface nouns (singular or plural, one or several words) to canonical
detector labels. The default, :meth:`Vocabulary.coco`, targets the 80 COCO classes exactly as
ultralytics YOLO names them ("person", "dining table", "cell phone", "tv", "hair drier", ...):

1. the standard CHAIR synonym table (``halluguard/data/coco_synonyms.txt``, shared with
   :mod:`halluguard.metrics.coco_vocabulary`) and its two-word objects;
2. a few hand-written additions (``EXTRA_SYNONYMS``: "mug" -> cup, "microwave oven" ->
   microwave, ...) and phrases whose last word names a class but which are not that object
   (``NOT_OBJECTS``: "car seat", "train track", ...);
3. WordNet hyponyms of each class's synsets (``COCO_SYNSETS``): "puppy" -> dog, "sedan" -> car,
   "skier" -> person. A hyponym is kept only when its most frequent noun sense lies under the
   class (so "glove" does not become a baseball glove), it is only a noun, it is claimed by one
   class only, and it is not in ``DENIED_HYPONYMS``. This needs NLTK and WordNet (see :mod:`.wordnet`); the result is
   cached in the halluguard cache folder. Words that are also adjectives, verbs or adverbs in
   WordNet ("closer", "natural", "guard") are left out: the hand table covers the common ones. Without WordNet the tables of 1 and 2 are used alone:
   about 560 words instead of about 10,000, which still covers CHAIR's vocabulary.

Other label sets (a lab world, a custom detector) start from :meth:`Vocabulary.empty` or a JSON
file ``{"label": ["synonym", ...], "_not_objects": ["phrase", ...]}``:

>>> vocab = Vocabulary.empty().extend({"circle": ["ring", "disc"], "moon": ["crescent"]})
>>> vocab.lookup("rings"), vocab.lookup("crescent moon"), vocab.lookup("moon"), vocab.lookup("sun")
('circle', None, 'moon', None)
>>> coco = Vocabulary.coco(wordnet=False)
>>> coco.lookup("Teddy Bears"), coco.lookup("people"), coco.lookup("car seat"), len(coco.labels)
('teddy bear', 'person', None, 80)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from halluguard.metrics.coco_vocabulary import double_words, singularize, synonyms

__all__ = ["COCO_SYNSETS", "EXTRA_SYNONYMS", "NOT_OBJECTS", "Vocabulary", "pluralize", "singularize"]

Table = Mapping[str, str | Iterable[str]]

#: WordNet 3.0 synsets whose hyponyms name each COCO class ("stop sign" has none).
COCO_SYNSETS: dict[str, tuple[str, ...]] = {
    "person": ("person.n.01",), "bicycle": ("bicycle.n.01",), "car": ("car.n.01",),
    "motorcycle": ("motorcycle.n.01",), "airplane": ("airplane.n.01",), "bus": ("bus.n.01",),
    "train": ("train.n.01",), "truck": ("truck.n.01",), "boat": ("boat.n.01", "ship.n.01"),
    "traffic light": ("traffic_light.n.01",), "fire hydrant": ("fireplug.n.01",), "stop sign": (),
    "parking meter": ("parking_meter.n.01",), "bench": ("bench.n.01",), "bird": ("bird.n.01",),
    "cat": ("domestic_cat.n.01",), "dog": ("dog.n.01",), "horse": ("horse.n.01",),
    "sheep": ("sheep.n.01",), "cow": ("cattle.n.01",), "elephant": ("elephant.n.01",),
    "bear": ("bear.n.01",), "zebra": ("zebra.n.01",), "giraffe": ("giraffe.n.01",),
    "backpack": ("backpack.n.01",), "umbrella": ("umbrella.n.01",), "handbag": ("bag.n.04",),
    "tie": ("necktie.n.01",), "suitcase": ("bag.n.06",), "frisbee": ("frisbee.n.01",),
    "skis": ("ski.n.01",), "snowboard": ("snowboard.n.01",), "sports ball": ("ball.n.01",),
    "kite": ("kite.n.03",), "baseball bat": ("baseball_bat.n.01",),
    "baseball glove": ("baseball_glove.n.01",), "skateboard": ("skateboard.n.01",),
    "surfboard": ("surfboard.n.01",), "tennis racket": ("tennis_racket.n.01",),
    "bottle": ("bottle.n.01",), "wine glass": ("wineglass.n.01",), "cup": ("cup.n.01",),
    "fork": ("fork.n.01",), "knife": ("knife.n.01",), "spoon": ("spoon.n.01",),
    "bowl": ("bowl.n.01", "bowl.n.03"), "banana": ("banana.n.02",), "apple": ("apple.n.01",),
    "sandwich": ("sandwich.n.01",), "orange": ("orange.n.01",), "broccoli": ("broccoli.n.02",),
    "carrot": ("carrot.n.03",), "hot dog": ("hotdog.n.02",), "pizza": ("pizza.n.01",),
    "donut": ("doughnut.n.02",), "cake": ("cake.n.03",), "chair": ("chair.n.01",),
    "couch": ("sofa.n.01",), "potted plant": ("houseplant.n.01",), "bed": ("bed.n.01",),
    "dining table": ("table.n.02",), "toilet": ("toilet.n.02",), "tv": ("television_receiver.n.01",),
    "laptop": ("laptop.n.01",), "mouse": ("mouse.n.04",), "remote": ("remote_control.n.01",),
    "keyboard": ("computer_keyboard.n.01",), "cell phone": ("cellular_telephone.n.01",),
    "microwave": ("microwave.n.02",), "oven": ("oven.n.01",), "toaster": ("toaster.n.02",),
    "sink": ("sink.n.01",), "refrigerator": ("refrigerator.n.01",), "book": ("book.n.02",),
    "clock": ("clock.n.01",), "vase": ("vase.n.01",), "scissors": ("scissors.n.01",),
    "teddy bear": ("teddy.n.01",), "hair drier": ("hand_blower.n.01",),
    "toothbrush": ("toothbrush.n.01",),
}  # fmt: skip

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
    "cell phone": ("smart phone", "mobile phone", "cellular phone"),
    "microwave": ("microwave oven",),
    "toaster": ("toaster oven",),
    "refrigerator": ("refridgerator",),
    "teddy bear": ("teddy",),
    "hair drier": ("hair dryer", "blow dryer", "blow drier", "hairdrier"),
    "toothbrush": ("tooth brush",),
}  # fmt: skip

#: Phrases whose last word names a class but which are not that object.
NOT_OBJECTS: tuple[str, ...] = (
    "car seat", "booster seat", "bike seat", "bicycle seat", "motorcycle seat", "back seat", "front seat",
    "passenger seat", "driver seat", "toilet seat cover", "train track", "home plate", "cable car",
    "bird 's eye", "birds eye", "bird eye", "computer screen", "phone screen", "table top", "tabletop",
    "table cloth", "dog house", "doghouse", "ski lift", "chair lift", "teddy bear picnic",
)  # fmt: skip

#: WordNet hyponyms that mislead more than they help (mostly other senses in image captions).
DENIED_HYPONYMS: frozenset[str] = frozenset(
    """
    electric commuter lower upper console counter booth altar cooler glove lounge beef charger jug
    gourd canteen urn delicious prima jonathan sinker settle cruiser hardtop liner jitney grinder
    hero sub red hot go-ahead green light yellow light penalty box passenger vehicle buckskin mount
    model tea maker pippin stayman cortland bismark gyro dumper dustcart notebook settee seat
    stand bar server board mat table bureau secretary sideboard buffet trestle vanity worktable
    workbench pallet cot berth bunk crib cradle hammock mattress bay chestnut sorrel roan pinto
    dun grey gray black white brown pied ace angel baby bachelor boss cat chick doll
    face giant hand head host heavy infant lady lamb love mate monster nurse pet pilot sitter star
    tiger wolf fox angel dummy witch nude smoothie soldier skin stud steer stock controller
    comforter shrimp misses ward pop virgin stand in antique
    """.split()
) | frozenset(("tea maker", "red hot", "green light", "yellow light", "penalty box", "passenger vehicle"))

_VERSION = 6  # bump when the tables or the WordNet rules change (invalidates the cache)

_PLURAL_IRREGULAR = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "foot": "feet", "tooth": "teeth", "goose": "geese", "ox": "oxen", "knife": "knives",
    "leaf": "leaves", "calf": "calves", "wife": "wives", "shelf": "shelves", "wolf": "wolves",
    "sheep": "sheep", "deer": "deer", "fish": "fish", "skis": "skis", "scissors": "scissors",
    "bison": "bison", "aircraft": "aircraft", "broccoli": "broccoli", "cattle": "cattle",
    "luggage": "luggage", "bus": "buses", "taxi": "taxis", "ski": "skis", "tv": "tvs",
    "photo": "photos", "piano": "pianos", "radio": "radios", "kangaroo": "kangaroos",
    "half": "halves", "loaf": "loaves", "thief": "thieves", "scarf": "scarves",
}  # fmt: skip


def pluralize(noun: str) -> str:
    """The plural of an English noun (last word of a phrase), keeping its capitalisation.

    >>> pluralize("dog"), pluralize("bus"), pluralize("Knife"), pluralize("teddy bear"), pluralize("person")
    ('dogs', 'buses', 'Knives', 'teddy bears', 'people')
    >>> pluralize("giraffe"), pluralize("half"), pluralize("SUV")
    ('giraffes', 'halves', 'SUVs')
    """
    head, sep, last = noun.rpartition(" ")
    lower = last.lower()
    if last.isupper() and len(last) > 1 and lower not in _PLURAL_IRREGULAR:  # an initialism: "SUVs", "TVs"
        return head + sep + last + "s"
    if lower in _PLURAL_IRREGULAR:
        plural = _PLURAL_IRREGULAR[lower]
    elif lower.endswith(("man",)) and lower not in ("german", "human", "shaman", "talisman"):
        plural = lower[:-3] + "men"
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        plural = lower + "es"
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        plural = lower[:-1] + "ies"
    elif lower.endswith("fe") and not lower.endswith("ffe"):  # knife -> knives, giraffe -> giraffes
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


def _normalise(phrase: str) -> str:
    return " ".join(phrase.lower().replace("-", " ").replace("_", " ").split())


class Vocabulary:
    """Surface phrase -> detector label. ``None`` marks a phrase that is known not to be an object.

    Phrases are lower-case, words separated by single spaces (hyphens count as spaces). A lookup
    tries the phrase as written, then with its last word singularised.
    """

    def __init__(self, table: Table | None = None, not_objects: Iterable[str] = ()):
        self._entries: dict[str, str | None] = {}
        self._last_words: set[str] = set()  # last word of every phrase: a fast first filter
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
    def coco(cls, wordnet: bool | None = None) -> Vocabulary:
        """The 80 COCO classes (ultralytics names): CHAIR table + additions + WordNet hyponyms.

        ``wordnet``: ``None`` uses WordNet when it is available, ``False`` never, ``True``
        requires it (``RuntimeError`` with install instructions otherwise).
        """
        vocab = cls()
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
        vocab.ignore(NOT_OBJECTS)
        if wordnet is False:
            return vocab
        hyponyms = _cached_hyponyms(required=bool(wordnet))
        if hyponyms is not None:
            for word, label in hyponyms.items():
                if vocab.lookup(word) is None and _normalise(word) not in vocab._entries:
                    vocab.add(word, label)
            vocab.wordnet_used = True
        return vocab

    @classmethod
    def default(cls) -> Vocabulary:
        """The shared default: :meth:`coco` with WordNet when available (built once per process)."""
        if _DEFAULT.get("coco") is None:
            _DEFAULT["coco"] = cls.coco()
        return _DEFAULT["coco"]

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
        other._labels = set(self._labels)
        other.max_words = self.max_words
        other.wordnet_used = self.wordnet_used
        return other

    def add(self, phrase: str, label: str) -> Vocabulary:
        """Map one phrase (and its plural) to ``label``; the label names itself too."""
        self._set(phrase, label)
        self._set(label, label) if _normalise(label) not in self._entries else None
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
        key = _normalise(phrase)
        if not key:
            return
        self._entries[key] = label
        self._last_words.add(key.rsplit(" ", 1)[-1])
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

    def entry(self, words: Sequence[str]) -> tuple[bool, str | None]:
        """``(known, label)`` for a phrase given as lower-case words; ``known`` with ``None``
        means "explicitly not an object"."""
        last = words[-1]
        single = singularize(last)
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
        key = _normalise(phrase)
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

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1, sort_keys=True), encoding="utf-8")

    def __repr__(self) -> str:
        return f"Vocabulary({len(self._labels)} labels, {len(self._entries)} phrases)"


_DEFAULT: dict[str, Vocabulary | None] = {}


# ---------------------------------------------------------------------- WordNet hyponyms


def _tables_digest() -> str:
    blob = json.dumps([_VERSION, COCO_SYNSETS, sorted(DENIED_HYPONYMS)], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _cached_hyponyms(required: bool = False) -> dict[str, str] | None:
    """word -> label from WordNet, read from the cache or computed (a few seconds) and cached."""
    from halluguard.correctors.wordnet import cache_dir, ensure_wordnet

    path = cache_dir() / "vocabulary" / f"coco-wordnet-{_tables_digest()}.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    if not ensure_wordnet():
        if required:
            raise RuntimeError(
                "WordNet is not available: install NLTK (pip install nltk) and the WordNet database "
                "(apt-get install wordnet-base wordnet-sense-index, or python -m nltk.downloader wordnet), "
                "or use Vocabulary.coco(wordnet=False)"
            )
        return None
    try:
        table = wordnet_hyponyms(COCO_SYNSETS)
    except Exception as error:  # a broken WordNet install: degrade unless asked for it
        if required:
            raise RuntimeError(f"WordNet could not be read: {error}") from error
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs time
    return table


_TAXA = ("family_", "genus_", "order_", "subfamily_", "class_")


def wordnet_hyponyms(class_synsets: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """word -> label for the hyponyms of each label's synsets (rules in the module docstring).

    Needs :func:`~halluguard.correctors.wordnet.ensure_wordnet` to have returned ``True``.
    """
    from halluguard.correctors.wordnet import open_wordnet

    wn = open_wordnet()
    closures: dict[str, set[object]] = {}
    for label, names in class_synsets.items():
        closure: set[object] = set()
        for name in names:
            synset = wn.synset(name)
            closure.add(synset)
            closure.update(synset.closure(lambda s: s.hyponyms()))
        closures[label] = closure
    claimed: dict[str, set[str]] = {}
    for label, closure in closures.items():
        for synset in closure:
            for lemma in synset.lemma_names():  # type: ignore[attr-defined]
                if any(c.isdigit() for c in lemma) or "-" in lemma or lemma.startswith(_TAXA):
                    continue  # model numbers, "has-been"/"higher-up" (read as two common words), taxa
                if lemma[:1].isupper() and label == "person":
                    continue  # nationalities and creeds ("American") are mostly adjectives
                word = _normalise(lemma)
                if word in DENIED_HYPONYMS:
                    continue
                senses = wn.synsets(lemma)
                if senses and senses[0] in closure and all(s.pos() == "n" for s in senses):
                    claimed.setdefault(word, set()).add(label)
    return {word: labels.pop() for word, labels in sorted(claimed.items()) if len(labels) == 1}
