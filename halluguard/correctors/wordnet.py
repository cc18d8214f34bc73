"""Make WordNet available to NLTK without downloading anything.

NLTK looks for ``corpora/wordnet/`` in its data path. When that is missing, the Debian/Ubuntu
packages ``wordnet-base`` (``data.*``, ``index.*``, ``*.exc`` in ``/usr/share/wordnet``) and
``wordnet-sense-index`` (``index.sense``, which NLTK reads when it opens the corpus) hold the same
WordNet 3.0 database; only NLTK's ``lexnames`` file is missing, and it is generated here. :func:`ensure_wordnet` builds
``<cache>/nltk_data/corpora/wordnet/`` where ``<cache>`` is ``$HALLUGUARD_CACHE`` or
``~/.cache/halluguard``, and puts it on ``nltk.data.path``. The files are copied once (about
36 MB): NLTK >= 3.9 refuses to read symlinks or hard links that point outside its data folder.

>>> ensure_wordnet() in (True, False)
True
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
