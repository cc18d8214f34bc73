"""AMBER: generative and discriminative hallucination scores, as AMBER's ``inference.py`` computes them.

Wang et al., "An LLM-free Multi-dimensional Benchmark for MLLMs Hallucination Evaluation" (2023);
``inference.py`` and ``data/`` of the junyangwang0410/AMBER repository (line numbers below are that
file's).

``annotations.json`` is a list of ``{"id", "type", "truth", "hallu"?}``. Items with ``type`` ==
``generative`` (ids 1-1004) have ``truth`` (objects in the image) and ``hallu`` (objects a model is
likely to invent); the others are yes/no questions whose ``type`` names the dimension
(``discriminative-hallucination`` = existence, ``discriminative-attribute-state|number|action``, and
every other type - ``discriminative-relation`` for "yes" items, ``relation`` for "no" ones - relation,
lines 174-184). Two more files of AMBER's ``data/`` are read when they sit next to the annotations (or
are passed explicitly): ``relation.json`` (each object -> its associated words) and ``safe_words.txt``.

Generative scores (percent), by default as the official script:

- **nouns** (``extract_nouns``, lines 32-37): NLTK's ``word_tokenize``, the tokens tagged ``NN*``, each
  lemmatised by WordNet (NLTK's ``WordNetLemmatizer``, noun) - case as written, nothing is lower-cased
  ("Dog" at the start of a sentence is not "dog"); the modal "can" is a verb and never an object. The
  tags come from spaCy's tagger run on NLTK's tokens (NLTK's own tagger needs data that is not on PyPI);
- only nouns in AMBER's vocabulary (the keys and values of ``relation.json``) count (line 94);
- a noun is **hallucinated** unless it is a safe word, a ``truth`` object or an associated word of one,
  or - with word vectors - similar (cosine > 0.8) to one (lines 117-161);
- **CHAIR** = hallucinated nouns / counted nouns; **Cover** = ``truth`` entries mentioned / ``truth``
  entries; **Hal** = responses with a hallucinated noun / responses; **Cog** = ``hallu`` entries
  mentioned / ``hallu`` entries (each summed over all responses, lines 163-171 and 259-262).

The official script also compares nouns by spaCy ``en_core_web_lg`` word vectors (``similarity > 0.8``,
lines 25-29 and 141-158): a noun similar to a truth object counts as covered instead of hallucinated,
and one similar to a ``hallu`` object counts for Cog. halluguard does the same when that model is
installed (``pip install`` it, or pass ``vectors=`` a spaCy model name or path); without it the test is
skipped and the report says so - the official script does not run at all then.

Discriminative scores: accuracy, and precision/recall/F1 with **"no" as the positive class** (the answer
that catches a hallucinated object), overall and per dimension. By default an answer counts only if it
is exactly ``Yes`` or ``No`` (the official script, lines 186-245); ``lenient=True`` (the CLI's
``--rules corrected``) reads free text as POPE's strict parser does ("No, there is no dog." -> no).
F1 is the harmonic mean of the unrounded precision and recall; the official script rounds both to one
decimal first and adds 0.0001 to the denominator, so its F1 can differ in the last printed digit.

>>> ann = [{"id": 1, "type": "generative", "truth": ["dog", "grass"], "hallu": ["cat", "frisbee"]},
...        {"id": 2, "type": "discriminative-hallucination", "truth": "no"}]
>>> out = amber_scores({1: "A dog and a cat on the grass.", 2: "No"}, ann)
>>> [round(out[k], 1) for k in ("chair", "cover", "hal", "cog", "accuracy")]
[33.3, 100.0, 100.0, 50.0, 100.0]
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from halluguard.metrics.pope import parse_answer, pope_parts
from halluguard.metrics.runs import MetricRun, Run, UsageError, load_json_or_jsonl

__all__ = ["AmberData", "amber_scores", "evaluate_run", "extract_nouns", "load_amber", "word_vectors"]

GENERATIVE_RATES = ("chair", "cover", "hal", "cog")
DISCRIMINATIVE_RATES = ("accuracy", "precision", "recall", "f1")
#: Discriminative types and their dimensions; every other type is a relation question (line 183).
DIMENSIONS = {
    "discriminative-hallucination": ("existence",),
    "discriminative-attribute-state": ("attribute", "state"),
    "discriminative-attribute-number": ("attribute", "number"),
    "discriminative-attribute-action": ("attribute", "action"),
}
RELATION = ("relation",)
SIMILARITY = 0.8  # --similarity_score's default (line 19)

Similar = Callable[[str, str], bool]


@dataclass
class AmberData:
    """AMBER's annotations, word associations and safe words."""

    items: dict[int, dict[str, Any]]
    association: dict[str, list[str]] = field(default_factory=dict)
    safe_words: frozenset[str] = frozenset()

    def vocabulary(self) -> frozenset[str]:
        """The words a noun must be to count (``hallucination_words``, lines 56-61)."""
        if self.association:
            return frozenset(self.association) | {w for ws in self.association.values() for w in ws}
        words: set[str] = set()
        for item in self.items.values():
            if item.get("type") == "generative":
                words.update(item.get("truth", []))
                words.update(item.get("hallu", []))
        return frozenset(words)


def load_amber(
    annotations: str | Path | list[dict[str, Any]],
    relation: str | Path | dict[str, list[str]] | None = None,
    safe_words: str | Path | Iterable[str] | None = None,
) -> AmberData:
    """Read AMBER's ``annotations.json`` (plus ``relation.json``/``safe_words.txt`` found beside it)."""
    folder = Path(annotations).parent if isinstance(annotations, (str, Path)) else None
    data = load_json_or_jsonl(annotations) if isinstance(annotations, (str, Path)) else annotations
    if not isinstance(data, list) or not all(isinstance(x, dict) and "id" in x and "type" in x for x in data):
        raise UsageError(f"{annotations}: not AMBER annotations (expected a list of {{id, type, truth}})")
    if relation is None and folder is not None and (folder / "relation.json").is_file():
        relation = folder / "relation.json"
    if safe_words is None and folder is not None and (folder / "safe_words.txt").is_file():
        safe_words = folder / "safe_words.txt"
    if isinstance(relation, (str, Path)):
        relation = json.loads(Path(relation).read_text(encoding="utf-8"))
    if isinstance(safe_words, (str, Path)):
        safe_words = [line.split("\n")[0] for line in Path(safe_words).read_text(encoding="utf-8").splitlines()]
    return AmberData(
        items={int(x["id"]): x for x in data},
        association=dict(relation or {}),
        safe_words=frozenset(safe_words or ()),
    )


# --------------------------------------------------------------------------- nouns


@lru_cache(maxsize=1)
def _lemmatizer() -> Callable[[str], str]:
    """WordNet's noun lemma (NLTK's ``WordNetLemmatizer().lemmatize``), or halluguard's singular."""
    from halluguard.correctors.wordnet import ensure_wordnet

    if ensure_wordnet(load=True):
        from nltk.stem import WordNetLemmatizer

        return WordNetLemmatizer().lemmatize
    warnings.warn(
        "AMBER: WordNet is not installed (Debian wordnet-base, or nltk.download('wordnet')); nouns are "
        "singularised by halluguard's rules instead of lemmatised by WordNet, which can change a score",
        stacklevel=3,
    )
    from halluguard.metrics.coco_vocabulary import singularize

    return singularize


def extract_nouns(texts: Sequence[str], nlp: Any = None) -> list[list[str]]:
    """The nouns of each text as AMBER reads them (see the module docstring); ``nlp``: a spaCy
    pipeline with a tagger (default: the one ``halluguard fix`` uses)."""
    from spacy.tokens import Doc

    from halluguard.correctors.nlp import load_spacy
    from halluguard.metrics.official_text import word_tokenize

    nlp = load_spacy() if nlp is None else nlp
    lemma = _lemmatizer()
    docs = (Doc(nlp.vocab, words=word_tokenize(text)) for text in texts)
    tagging = [name for name in nlp.pipe_names if name in ("tok2vec", "tagger", "attribute_ruler")]
    with nlp.select_pipes(enable=tagging):
        return [[lemma(t.text) for t in doc if t.tag_.startswith("NN")] for doc in nlp.pipe(docs)]


def word_vectors(model: str = "en_core_web_lg", threshold: float = SIMILARITY) -> Similar | None:
    """AMBER's similarity test: spaCy ``Doc.similarity`` of two words above ``threshold`` (lines
    25-29), from the vectors of ``model`` (name or path); ``None`` when it is not installed."""
    try:
        import spacy

        nlp = spacy.load(model, exclude=["tagger", "parser", "ner", "lemmatizer", "attribute_ruler"])
    except (ImportError, OSError):
        return None

    @lru_cache(maxsize=65536)
    def vector(word: str):
        return nlp.make_doc(word).vector

    def similar(a: str, b: str) -> bool:
        u, v = vector(a), vector(b)
        norms = float((u @ u) ** 0.5 * (v @ v) ** 0.5)
        return bool(norms) and float(u @ v) / norms > threshold

    return similar


# --------------------------------------------------------------------------- generative


def _generative(nouns: list[str], item: dict[str, Any], data: AmberData, similar: Similar | None) -> dict[str, int]:
    """One response, as lines 90-171: counted nouns, hallucinated ones, truth and hallu entries covered."""
    assoc = data.association
    truth, hallu = list(item.get("truth", [])), list(item.get("hallu", []))

    def entries(objects: list[str]) -> tuple[list[str], list[int]]:
        """Associated words of each object, then the objects; each with the index of its object."""
        words = [w for i, o in enumerate(objects) for w in assoc.get(o, ())]
        owners = [i for i, o in enumerate(objects) for _ in assoc.get(o, ())]
        return words + objects, owners + list(range(len(objects)))

    (safe, safe_owner), (ha, ha_owner) = entries(truth), entries(hallu)
    covered, cognised = [0] * len(truth), [0] * len(hallu)
    hallucinated = 0
    for noun in nouns:
        if noun in data.safe_words:
            continue
        if noun in safe:
            covered[safe_owner[safe.index(noun)]] = 1
            continue
        if noun in ha:
            cognised[ha_owner[ha.index(noun)]] = 1
        if similar is not None:
            j = next((j for j, w in enumerate(ha) if similar(noun, w)), None)
            if j is not None:
                cognised[ha_owner[j]] = 1
            j = next((j for j, w in enumerate(safe) if similar(noun, w)), None)
            if j is not None:
                covered[safe_owner[j]] = 1
                continue
        hallucinated += 1
    return {
        "nouns": len(nouns),
        "hallucinated": hallucinated,
        "truth": len(truth),
        "covered": sum(covered),
        "hallu": len(hallu),
        "cognised": sum(cognised),
    }


# --------------------------------------------------------------------------- scores


def _rate(num: float, den: float) -> float:
    return 100.0 * num / den if den else float("nan")


def _discriminative_parts(pairs: list[tuple[str | None, str]]) -> dict[str, tuple[list[float], list[float]]]:
    """POPE's parts with "no" as the positive answer (AMBER's discriminative metrics), no yes-ratio."""
    parts = pope_parts([p for p, _ in pairs], [t for _, t in pairs], positive="no")
    del parts["yes_ratio"]
    return parts


def _summarise(parts: dict[str, tuple[list[float], list[float]]]) -> dict[str, float]:
    return {k: _rate(sum(n), sum(d)) for k, (n, d) in parts.items()}


def official_answer(text: str) -> str | None:
    """The official script's reading of a yes/no answer: exactly ``Yes`` or ``No``, else neither."""
    return {"Yes": "yes", "No": "no"}.get(text)


def score(
    responses: dict[int, str],
    data: AmberData,
    similar: Similar | None = None,
    lenient: bool = False,
    nlp: Any = None,
) -> tuple[dict[str, Any], list[str], dict[str, tuple[list[float], list[float]]], dict[str, list[str]]]:
    """Scores, plus item keys, per-item parts and the keys each part is aligned with (for statistics)."""
    vocab = data.vocabulary()
    generative = [(rid, text) for rid, text in responses.items() if data.items[rid].get("type") == "generative"]
    nouns = extract_nouns([text for _, text in generative], nlp) if generative else []
    gen_keys: list[str] = []
    gen: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in GENERATIVE_RATES}
    for (rid, _), found in zip(generative, nouns):
        g = _generative([n for n in found if n in vocab], data.items[rid], data, similar)
        gen_keys.append(str(rid))
        for name, (num, den) in (
            ("chair", (g["hallucinated"], g["nouns"])),
            ("cover", (g["covered"], g["truth"])),
            ("hal", (float(g["hallucinated"] > 0), 1.0)),
            ("cog", (g["cognised"], g["hallu"])),
        ):
            gen[name][0].append(float(num))
            gen[name][1].append(float(den))
    disc: list[tuple[str, str | None, str]] = []  # (key, pred, truth)
    dims: dict[str, list[tuple[str | None, str]]] = {}
    for rid, text in responses.items():
        item = data.items[rid]
        if item.get("type") == "generative":
            continue
        truth = str(item.get("truth", ""))
        pred = parse_answer(text, strict=True) if lenient else official_answer(text)
        disc.append((str(rid), pred, truth))
        for dim in DIMENSIONS.get(str(item.get("type")), RELATION):
            dims.setdefault(dim, []).append((pred, truth))
    summary: dict[str, Any] = {
        "n": len(gen_keys) + len(disc),
        "n_generative": len(gen_keys),
        "n_discriminative": len(disc),
    }
    summary.update(_summarise(gen))
    d_parts = _discriminative_parts([(p, t) for _, p, t in disc])
    summary.update(_summarise(d_parts))
    summary["unparsed"] = sum(1 for _, p, _ in disc if p is None)
    summary["dimensions"] = {
        dim: dict(_summarise(_discriminative_parts(v)), n=len(v)) for dim, v in sorted(dims.items())
    }
    # Parts for statistics: generative rates over generative items, discriminative over the rest.
    keys = gen_keys + [k for k, _, _ in disc]
    parts: dict[str, tuple[list[float], list[float]]] = dict(gen)
    parts.update(d_parts)
    part_keys = {name: gen_keys for name in GENERATIVE_RATES}
    part_keys.update({name: [k for k, _, _ in disc] for name in DISCRIMINATIVE_RATES})
    return summary, keys, parts, part_keys


def amber_scores(
    responses: dict[int, str],
    annotations: AmberData | list[dict[str, Any]],
    similar: Similar | None = None,
    lenient: bool = False,
) -> dict[str, Any]:
    """AMBER scores of ``{id: response}`` (percent; NaN for a task with no responses)."""
    data = annotations if isinstance(annotations, AmberData) else load_amber(annotations)
    return score(responses, data, similar, lenient)[0]


def evaluate_run(
    run: Run, data: AmberData, similar: Similar | None = None, lenient: bool = False
) -> MetricRun:
    """Score a run whose records carry AMBER's ``id`` (or ``question_id``) and a response."""
    errors = list(run.errors)
    responses: dict[int, str] = {}
    for rec in run.records:
        rid = rec.record.get("id", rec.record.get("question_id"))
        try:
            rid = int(rid)
        except (TypeError, ValueError):
            errors.append({"line": rec.line, "reason": "no integer 'id' field (AMBER item id)"})
            continue
        if rid not in data.items:
            errors.append({"line": rec.line, "reason": f"id {rid} is not in the AMBER annotations"})
            continue
        if rid in responses:
            errors.append({"line": rec.line, "reason": f"id {rid} answered twice; the first answer is kept"})
            continue
        responses[rid] = rec.text
    errors.sort(key=lambda e: e["line"])
    summary, keys, parts, part_keys = score(responses, data, similar, lenient)
    return MetricRun(
        name=run.name, summary=summary, keys=keys, parts=parts, errors=errors, part_keys=part_keys
    )
