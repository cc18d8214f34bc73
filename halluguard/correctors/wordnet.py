"""Make WordNet available to NLTK without downloading anything.

NLTK looks for ``corpora/wordnet/`` in its data path. When that is missing, the Debian/Ubuntu
packages ``wordnet-base`` (``data.*``, ``index.*``, ``*.exc`` in ``/usr/share/wordnet``) and
``wordnet-sense-index`` (``index.sense``, which NLTK reads when it opens the corpus) hold the same
WordNet 3.0 database; only NLTK's ``lexnames`` file is missing, and it is generated here.
:func:`ensure_wordnet` builds
``<cache>/nltk_data/corpora/wordnet/`` where ``<cache>`` is ``$HALLUGUARD_CACHE`` or
``~/.cache/halluguard``, and puts it on ``nltk.data.path``. The files are copied once (about
36 MB): NLTK >= 3.9 refuses to read symlinks or hard links that point outside its data folder.

WordNet is not read at run time: the COCO vocabulary ships precomputed
(``halluguard/data/coco_vocabulary.json``). This module rebuilds that file, and extends a
vocabulary with the hyponyms of other synsets (rules in :func:`wordnet_hyponyms`)::

    python -m halluguard.correctors.wordnet --check          # the shipped file is up to date?
    python -m halluguard.correctors.wordnet --write          # rebuild it (after editing the tables)
    python -m halluguard.correctors.wordnet --synsets mine.json --base empty --write mine.vocab.json

>>> ensure_wordnet() in (True, False)
True
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from halluguard.detectors.assets import cache_dir

#: where Debian's ``wordnet-base`` installs the database; ``$HALLUGUARD_WORDNET_DIR`` overrides
SYSTEM_WORDNET_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/local/WordNet-3.0/dict")

#: the lexicographer files of WordNet 3.0 (lexnames(5WN)): number, name, part of speech
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_REQUIRED = (
    "index.noun",
    "data.noun",
    "index.verb",
    "data.verb",
    "index.adj",
    "data.adj",
    "index.adv",
    "data.adv",
    "index.sense",  # NLTK reads it when it opens the corpus
)
_OPTIONAL = ("noun.exc", "verb.exc", "adj.exc", "adv.exc")

_STATE: dict[str, bool] = {}


def lexnames_text() -> str:
    """The content of WordNet's ``lexnames`` file (45 lines: ``00 adj.all 3`` ... ``44 adj.ppl 3``)."""
    return "".join(f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def find_system_wordnet() -> Path | None:
    """The folder with a system WordNet database (``data.noun`` and friends), or ``None``."""
    candidates = [os.environ.get("HALLUGUARD_WORDNET_DIR", ""), *SYSTEM_WORDNET_DIRS]
    for folder in candidates:
        if folder and all((Path(folder) / name).is_file() for name in _REQUIRED):
            return Path(folder)
    return None


def build_nltk_data(source: Path, target_root: Path | None = None) -> Path:
    """Build ``<target_root>/corpora/wordnet`` from ``source`` (copies + generated lexnames).

    Returns ``target_root`` (an ``nltk_data`` folder). Idempotent.
    """
    root = target_root if target_root is not None else cache_dir() / "nltk_data"
    folder = root / "corpora" / "wordnet"
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*_REQUIRED, *_OPTIONAL):
        _place(source / name, folder / name)
    lexnames = folder / "lexnames"
    if (source / "lexnames").is_file():
        _place(source / "lexnames", lexnames)
    elif not lexnames.is_file() or lexnames.read_text() != lexnames_text():
        tmp = lexnames.with_name(f"lexnames.{os.getpid()}.tmp")
        tmp.write_text(lexnames_text())
        os.replace(tmp, lexnames)
    return root


def _place(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically; skip when already in place."""
    if not src.is_file():
        return
    if dst.is_file() and not dst.is_symlink() and dst.stat().st_size == src.stat().st_size:
        return
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)  # atomic: a concurrent reader sees the whole file or none


def _nltk_has_wordnet() -> bool:
    import nltk

    for resource in ("corpora/wordnet.zip", "corpora/wordnet"):
        try:
            found = nltk.data.find(resource)
        except LookupError:
            continue
        if resource.endswith(".zip"):
            return True
        folder = Path(str(found))
        return all((folder / name).is_file() for name in (*_REQUIRED, "lexnames"))
    return False


def ensure_wordnet(load: bool = False) -> bool:
    """Return whether NLTK's WordNet is usable, wiring the system database in when needed.

    With ``load=True`` the corpus is also opened (a few seconds) and queried once. Never
    downloads and never raises: ``False`` means "use the hand-written tables only";
    install NLTK (``pip install nltk``) and WordNet (``apt-get install wordnet-base wordnet-sense-index``, or
    ``python -m nltk.downloader wordnet``) to get ``True``.
    """
    key = "loaded" if load else "found"
    if key in _STATE:
        return _STATE[key]
    ok = False
    try:
        import nltk
    except ImportError:
        _STATE[key] = False
        return False
    try:
        if not _nltk_has_wordnet():
            source = find_system_wordnet()
            if source is not None:
                root = build_nltk_data(source)
                if str(root) not in nltk.data.path:
                    nltk.data.path.insert(0, str(root))
        ok = _nltk_has_wordnet()
        if ok and load:
            ok = bool(open_wordnet().synsets("dog", pos="n"))
    except Exception:  # a broken or partial installation is the same as none: degrade
        ok = False
    _STATE[key] = ok
    return ok


def open_wordnet():  # type: ignore[no-untyped-def]
    """NLTK's WordNet reader (call :func:`ensure_wordnet` first), quiet about missing OMW data."""
    import warnings

    from nltk.corpus import wordnet as wn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "The multilingual functions are not available ..."
        wn.ensure_loaded()
    return wn


# ---------------------------------------------------------------------- hyponyms -> vocabulary

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
    comforter shrimp misses ward pop virgin stand in antique trailer
    """.split()
) | frozenset(("tea maker", "red hot", "green light", "yellow light", "penalty box", "passenger vehicle"))

_TAXA = ("family_", "genus_", "order_", "subfamily_", "class_")


def wordnet_hyponyms(class_synsets: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """word -> label for the hyponyms of each label's synsets (``{"car": ["car.n.01"]}``).

    A hyponym is kept only when its most frequent sense lies under the label's synsets (so "glove"
    is no baseball glove), it is only a noun in WordNet ("closer", "guard" are not), it is claimed
    by one label only and it is not in :data:`DENIED_HYPONYMS`; model numbers, hyphenated words,
    taxa and capitalised person words (nationalities) are left out. Needs :func:`ensure_wordnet`.
    """
    from halluguard.correctors.vocabulary import normalise

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
                word = normalise(lemma)
                if word in DENIED_HYPONYMS:
                    continue
                senses = wn.synsets(lemma)
                if senses and senses[0] in closure and all(s.pos() == "n" for s in senses):
                    claimed.setdefault(word, set()).add(label)
    return {word: labels.pop() for word, labels in sorted(claimed.items()) if len(labels) == 1}


def require_wordnet() -> None:
    """Raise ``RuntimeError`` saying how to install WordNet unless :func:`ensure_wordnet` is true."""
    if not ensure_wordnet():
        raise RuntimeError(
            "WordNet is not available: install NLTK (pip install nltk) and the WordNet database "
            "(apt-get install wordnet-base wordnet-sense-index, or python -m nltk.downloader wordnet)"
        )


def build_coco_vocabulary() -> Any:
    """The COCO vocabulary as shipped: the hand tables plus the hyponyms of :data:`COCO_SYNSETS`."""
    from halluguard.correctors.vocabulary import Vocabulary

    return Vocabulary.coco(wordnet=False).with_wordnet(COCO_SYNSETS)


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild or check the shipped COCO vocabulary, or build one from your own synsets."""
    from halluguard.correctors.vocabulary import SHIPPED_VOCABULARY, Vocabulary

    parser = argparse.ArgumentParser(prog="python -m halluguard.correctors.wordnet", description=main.__doc__)
    parser.add_argument("--synsets", type=Path, help="JSON {label: [synset name, ...]} (e.g. \"dog.n.01\") "
                        "[default: the COCO classes' synsets]")
    parser.add_argument("--base", choices=("coco", "empty"), default="coco",
                        help="what the hyponyms of --synsets extend [default: the shipped COCO vocabulary]")
    parser.add_argument("--write", nargs="?", const=str(SHIPPED_VOCABULARY), metavar="PATH",
                        help=f"write the JSON [default PATH: the package's {SHIPPED_VOCABULARY.name}]")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the shipped file differs from a rebuild")
    args = parser.parse_args(argv)
    require_wordnet()
    if args.synsets is None:
        vocab = build_coco_vocabulary()
    else:
        base = Vocabulary.coco() if args.base == "coco" else Vocabulary.empty()
        vocab = base.with_wordnet(json.loads(args.synsets.read_text(encoding="utf-8")))
    if args.check:
        same = SHIPPED_VOCABULARY.read_text(encoding="utf-8") == vocab.dumps()
        print(f"{SHIPPED_VOCABULARY}: {'up to date' if same else 'differs from a rebuild: run --write'}")
        return 0 if same else 1
    if args.write:
        Path(args.write).write_text(vocab.dumps(), encoding="utf-8")
        print(f"{args.write}: {len(vocab)} phrases, {len(vocab.labels)} labels")
    else:
        sys.stdout.write(vocab.dumps())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
