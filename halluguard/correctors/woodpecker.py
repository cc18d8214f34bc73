"""The post-hoc corrector: claims -> detections -> verdicts -> rewrite, as three reusable stages.

Woodpecker (Yin et al., 2023) extracts an answer's concepts, asks a detector about each and
rewrites what the image does not support; LURE (Zhou et al., ICLR 2024) removes the objects a
model is most likely to have made up (low probability, late in the answer, co-occurrence-driven).
Here both are deterministic: spaCy claims, any :mod:`halluguard.detectors` backend, rule-based
rewriting (or an LLM rewriter behind the same interface).

The three stages are plain methods so that every engine (the local pipeline, Ray) runs the very
same code: :meth:`Woodpecker.extract` (text, CPU), :meth:`Woodpecker.detect` (images, the costly
one, each unique image once) and :meth:`Woodpecker.settle` (verify + LURE + yes/no + rewrite).

>>> import json, tempfile, pathlib
>>> labels = pathlib.Path(tempfile.mkdtemp()) / "labels.json"
>>> _ = labels.write_text(json.dumps({"1": ["dog", "frisbee"]}))
>>> from halluguard.records import Answer
>>> corrector = Woodpecker.from_spec(f"annotations:{labels}", detector_labels="coco")  # exhaustive for COCO
>>> answer = Answer("A dog, a cat and a frisbee are on the grass.", {}, 1, image_id=1)
>>> from halluguard.images import ImageRef
>>> [c.corrected for c in corrector.correct([answer], [ImageRef(None, "1")])]
['A dog and a frisbee are on the grass.']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from halluguard.images import ImageRef
from halluguard.records import Answer, Claim, Correction, Detections, Edit, RecordError

MODES = ("woodpecker", "lure")
UNVERIFIABLE_POLICIES = ("keep", "hedge", "remove")


@dataclass
class CorrectOptions:
    """What to correct and how (each one a ``halluguard fix`` option).

    - ``mode``: ``woodpecker`` rewrites contradicted claims; ``lure`` also removes (or hedges)
      claims whose suspicion score reaches ``suspicion_threshold``.
    - ``unverifiable``: what to do with claims the detector cannot check: keep (default), hedge, remove.
    - ``grounding``: append each supported object's box, Woodpecker-style ("a dog [x1, y1, x2, y2]").
    - ``threshold``: detector score from which a box counts as seen.
    """

    mode: str = "woodpecker"
    unverifiable: str = "keep"
    grounding: bool = False
    threshold: float | None = None
    suspicion_threshold: float = 0.5
    cooccurrence: str | None = None
    vocabulary: str | None = None
    rewriter: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid modes: {', '.join(MODES)}")
        if self.unverifiable not in UNVERIFIABLE_POLICIES:
            raise ValueError(f"unknown unverifiable policy {self.unverifiable!r}; valid: "
                             f"{', '.join(UNVERIFIABLE_POLICIES)}")


class Woodpecker:
    """The corrector the ``fix`` pipeline runs. Build it with :meth:`from_spec`."""

    def __init__(self, detector: Any, options: CorrectOptions | None = None, *, vocabulary: Any = None, nlp: Any = None):
        from halluguard.detectors.base import CachedDetector

        self.options = options or CorrectOptions()
        self.detector = detector if isinstance(detector, CachedDetector) else CachedDetector(detector)
        self.vocabulary = vocabulary if vocabulary is not None else _load_vocabulary(self.options.vocabulary)
        self.nlp = nlp
        self._cooccurrence = _load_cooccurrence(self.options.cooccurrence)
        self._rewrite = _load_rewriter(self.options.rewriter)

    @classmethod
    def from_spec(cls, detector: Any = "none", *, device: str | None = None, detector_labels: str | None = None,
                  imgsz: int | None = None, **options: Any) -> "Woodpecker":
        """A corrector around ``load_detector(detector)``; ``options`` are :class:`CorrectOptions` fields.

        ``detector_labels`` ("coco", or a JSON list of labels) declares what an annotation file is
        exhaustive for: without it, only labels that occur in the file can be contradicted. ``imgsz``:
        a YOLO detector's inference size (default: the size it was trained at).
        """
        from halluguard.detectors import load_detector

        labels: Any = detector_labels
        if labels not in (None, "coco"):
            import json
            from pathlib import Path

            labels = json.loads(Path(labels).read_text())
        return cls(load_detector(detector, device=device, vocabulary=labels, imgsz=imgsz), CorrectOptions(**options))

    # -- stage 1: claims (CPU, batched) ----------------------------------------------------------
    def parse(self, texts: Sequence[str]) -> list[Any]:
        """The parses of ``texts`` with their claims (``doc._.claims``), through this corrector's
        spaCy pipeline (``nlp``, default :func:`~halluguard.correctors.nlp.load_spacy`)."""
        from halluguard.correctors.component import parse_claims

        return parse_claims(list(texts), self.vocabulary, self.nlp)

    def extract(self, texts: Sequence[str]) -> list[list[Claim]]:
        return [doc._.claims for doc in self.parse(texts)]

    # -- stage 2: detection (each unique image once) ---------------------------------------------
    def detect(self, images: Sequence[ImageRef | None], claims: Sequence[list[Claim]]) -> list[Detections | RecordError]:
        """One result per answer; an answer without an image gets a :class:`RecordError`."""
        wanted = [(i, image) for i, image in enumerate(images) if image is not None]
        results: list[Detections | RecordError] = [
            RecordError("no 'image' or 'image_id': this answer cannot be checked against its image", "image")
        ] * len(images)
        if wanted:
            queries = [sorted(claimed_labels(claims[i])) for i, _ in wanted]
            found = self.detector.detect_each([image for _, image in wanted], queries)
            for (i, _), result in zip(wanted, found):
                results[i] = result
        return results

    # -- stage 3: verify, score, rewrite ---------------------------------------------------------
    def settle(self, answer: Answer, claims: list[Claim], detections: Detections, image: ImageRef | None,
               doc: Any = None) -> Correction:
        """Verify ``claims`` against ``detections`` and rewrite the answer (``doc``: its parse from
        :meth:`parse`; else it is parsed again with this corrector's pipeline)."""
        from halluguard.correctors.verify import verify
        from halluguard.correctors.yesno import check_yes_no

        threshold = {} if self.options.threshold is None else {"threshold": self.options.threshold}
        flipped, claim = check_yes_no(answer.question, answer.text, detections, self.vocabulary, **threshold)
        if claim is not None:  # a yes/no answer, with its question or without
            if flipped is None:
                return Correction(answer.text, [claim], [])
            reason = f"yes/no answer about {claim.label}: {claim.verdict}"
            return Correction(flipped, [claim], [Edit(0, len(answer.text), answer.text, flipped, reason)])
        verify(claims, detections, image, **threshold)
        if self.options.mode == "lure":
            from halluguard.correctors.lure import suspicion

            suspicion(answer.text, claims, answer.logprobs, self._cooccurrence)
        options = self._rewrite_options()
        corrected, edits = self._rewrite(answer.text, claims, doc=doc, nlp=self.nlp, **options)
        return Correction(corrected, claims, edits)

    def _rewrite_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"grounding": self.options.grounding, "unverifiable": self.options.unverifiable}
        if self.options.mode == "lure":
            options["suspicion_threshold"] = self.options.suspicion_threshold
        return options

    # -- the three together, as the local pipeline calls them ------------------------------------
    def correct(self, answers: Sequence[Answer], images: Sequence[ImageRef | None]) -> list[Correction | RecordError]:
        docs = self.parse([a.text for a in answers])
        claims = [doc._.claims for doc in docs]
        return self.settle_each(answers, claims, self.detect(images, claims), images, docs)

    def settle_each(self, answers: Sequence[Answer], claims: Sequence[list[Claim]],
                    detections: Sequence[Detections | RecordError],
                    images: Sequence[ImageRef | None],
                    docs: Sequence[Any] | None = None) -> list[Correction | RecordError]:
        """:meth:`settle` for each answer (``docs``: their parses, from :meth:`parse`); a failed
        detection, or a :class:`RecordError` while settling, is that answer's result."""
        results: list[Correction | RecordError] = []
        docs = docs if docs is not None else [None] * len(answers)
        for answer, answer_claims, found, image, doc in zip(answers, claims, detections, images, docs):
            if isinstance(found, RecordError):
                results.append(found)
                continue
            try:
                results.append(self.settle(answer, answer_claims, found, image, doc))
            except RecordError as exc:
                results.append(exc)
        return results


def claimed_labels(claims: Sequence[Claim]) -> set[str]:
    """The labels an answer's claims name (objects and the targets of relations): what an
    open-vocabulary detector is asked to look for."""
    labels = {c.label for c in claims}
    labels.update(c.target for c in claims if c.target)
    return labels


def _load_vocabulary(path: str | None) -> Any:
    from halluguard.correctors.vocabulary import Vocabulary

    return Vocabulary.from_file(path) if path else Vocabulary.default()


def _load_cooccurrence(path: str | None) -> Any:
    if path is None:
        return None
    from halluguard.correctors.lure import CooccurrenceStats

    return CooccurrenceStats.load(path)


def _load_rewriter(spec: str | None):
    if spec is None:
        from halluguard.correctors.rewrite import rewrite

        return rewrite
    from halluguard.correctors.llm_rewrite import LLMRewriter

    return LLMRewriter(spec)
