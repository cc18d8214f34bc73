"""AMBER: generative and discriminative hallucination scores from AMBER's annotation format.

Wang et al., "An LLM-free Multi-dimensional Benchmark for MLLMs Hallucination Evaluation" (2023);
``inference.py`` and ``data/`` of the junyangwang0410/AMBER repository.

``annotations.json`` is a list of ``{"id", "type", "truth", "hallu"?}``. Items with ``type`` ==
``generative`` (ids 1-1004) have ``truth`` (objects in the image) and ``hallu`` (objects a model is
likely to invent); the others are yes/no questions whose ``type`` names the dimension
(``discriminative-hallucination`` = existence, ``discriminative-attribute-state|number|action``,
``discriminative-relation``) and whose ``truth`` is "yes" or "no". Two more files of AMBER's ``data/``
are used when they sit next to the annotations (or are passed explicitly): ``relation.json`` (each object
-> its associated words, e.g. synonyms and parts) and ``safe_words.txt`` (words never counted).

Generative scores (percent), per response:

- the response's object words are those of AMBER's vocabulary (the keys and values of
  ``relation.json``, else every annotated object) found among its singularised tokens;
- a word is **hallucinated** unless it is a safe word, a ``truth`` object or associated with one;
- **CHAIR** = hallucinated words / object words;
- **Cover** = ``truth`` objects mentioned (directly or via an associated word) / ``truth`` entries (a
  repeated entry counts twice, as in ``inference.py``);
- **Hal** = responses with a hallucinated word / responses;
- **Cog** = ``hallu`` objects mentioned / ``hallu`` entries.

Differences from ``inference.py``, documented rather than hidden: nouns are not picked by NLTK's POS
tagger (a verb such as "watch" would count if it is a vocabulary word), and the spaCy word-vector
similarity test (``en_core_web_lg``, threshold 0.8) is off unless a ``similar(a, b) -> bool`` function is
passed. Discriminative answers are parsed with POPE's strict parser instead of exact string equality.

Discriminative scores follow AMBER: accuracy, and precision/recall/F1 with **"no" as the positive
class**, overall and per dimension.

>>> ann = [{"id": 1, "type": "generative", "truth": ["dog", "grass"], "hallu": ["cat", "frisbee"]},
...        {"id": 2, "type": "discriminative-hallucination", "truth": "no"}]
>>> out = amber_scores({1: "A dog and a cat on the grass.", 2: "No."}, ann)
>>> [round(out[k], 1) for k in ("chair", "cover", "hal", "cog", "accuracy")]
[33.3, 100.0, 100.0, 50.0, 100.0]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluguard.metrics.coco_vocabulary import singularize, tokenize
from halluguard.metrics.pope import parse_answer, pope_parts
from halluguard.metrics.runs import MetricRun, Run, UsageError, load_json_or_jsonl

__all__ = ["AmberData", "amber_scores", "evaluate_run", "load_amber"]

GENERATIVE_RATES = ("chair", "cover", "hal", "cog")
DISCRIMINATIVE_RATES = ("accuracy", "precision", "recall", "f1")
DIMENSIONS = {
    "discriminative-hallucination": ("existence",),
    "discriminative-attribute-state": ("attribute", "state"),
    "discriminative-attribute-number": ("attribute", "number"),
    "discriminative-attribute-action": ("attribute", "action"),
    "discriminative-relation": ("relation",),
}


@dataclass
class AmberData:
    """AMBER's annotations, word associations and safe words."""

    items: dict[int, dict[str, Any]]
    association: dict[str, list[str]] = field(default_factory=dict)
    safe_words: frozenset[str] = frozenset()

    def vocabulary(self) -> frozenset[str]:
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
        safe_words = [
            w.strip() for w in Path(safe_words).read_text(encoding="utf-8").splitlines() if w.strip()
        ]
    return AmberData(
        items={int(x["id"]): x for x in data},
        association=dict(relation or {}),
        safe_words=frozenset(safe_words or ()),
    )


def _object_words(text: str, vocabulary: frozenset[str]) -> list[str]:
    """Vocabulary words in ``text``: two-word entries first, then single singularised tokens."""
    words = [singularize(t.text) for t in tokenize(text) if t.is_word]
    out, i = [], 0
    while i < len(words):
        pair = " ".join(words[i : i + 2])
        if i + 1 < len(words) and pair in vocabulary:
            out.append(pair)
            i += 2
            continue
        if words[i] in vocabulary:
            out.append(words[i])
        i += 1
    return out


def _first_hit(word: str, objects: list[str], assoc: dict[str, list[str]], similar: Any = None) -> int | None:
    """Index of the object ``word`` counts for, searched in AMBER's order (associated words first)."""
    for i, obj in enumerate(objects):
        if word in assoc.get(obj, ()):
            return i
    for i, obj in enumerate(objects):
        if word == obj:
            return i
    if similar:
        for i, obj in enumerate(objects):
            if any(similar(word, w) for w in (*assoc.get(obj, ()), obj)):
                return i
    return None


def _generative(
    text: str, item: dict[str, Any], data: AmberData, vocab: frozenset[str], similar: Any
) -> dict[str, int]:
    # Denominators keep repeated annotation entries, as inference.py does ("ship", "ship").
    truth, hallu = list(item.get("truth", [])), list(item.get("hallu", []))
    assoc = data.association
    covered: set[int] = set()
    cognised: set[int] = set()
    n_words = n_hallucinated = 0
    for word in _object_words(text, vocab):
        n_words += 1
        if word in data.safe_words:
            continue
        hit = _first_hit(word, truth, assoc)
        if hit is not None:
            covered.add(hit)
            continue
        risky = _first_hit(word, hallu, assoc, similar)
        if risky is not None:
            cognised.add(risky)
        hit = _first_hit(word, truth, assoc, similar) if similar else None
        if hit is not None:
            covered.add(hit)
        else:
            n_hallucinated += 1
    return {
        "words": n_words,
        "hallucinated": n_hallucinated,
        "truth": len(truth),
        "covered": len(covered),
        "hallu": len(hallu),
        "cognised": len(cognised),
    }


def _rate(num: float, den: float) -> float:
    return 100.0 * num / den if den else float("nan")


def _discriminative_parts(pairs: list[tuple[str | None, str]]) -> dict[str, tuple[list[float], list[float]]]:
    """POPE's parts with "no" as the positive answer (AMBER's discriminative metrics), no yes-ratio."""
    parts = pope_parts([p for p, _ in pairs], [t for _, t in pairs], positive="no")
    del parts["yes_ratio"]
    return parts


def _summarise(parts: dict[str, tuple[list[float], list[float]]]) -> dict[str, float]:
    return {k: _rate(sum(n), sum(d)) for k, (n, d) in parts.items()}


def score(
    responses: dict[int, str], data: AmberData, similar: Callable[[str, str], bool] | None = None
) -> tuple[dict[str, Any], list[str], dict[str, tuple[list[float], list[float]]], dict[str, list[str]]]:
    """Scores, plus item keys, per-item parts and the keys each part is aligned with (for statistics)."""
    vocab = data.vocabulary()
    gen_keys: list[str] = []
    gen = {k: ([], []) for k in GENERATIVE_RATES}
    disc: list[tuple[str, str | None, str]] = []  # (key, pred, truth)
    dims: dict[str, list[tuple[str | None, str]]] = {}
    for rid, text in responses.items():
        item = data.items[rid]
        if item.get("type") == "generative":
            g = _generative(text, item, data, vocab, similar)
            gen_keys.append(str(rid))
            for name, (num, den) in (
                ("chair", (g["hallucinated"], g["words"])),
                ("cover", (g["covered"], g["truth"])),
                ("hal", (float(g["hallucinated"] > 0), 1.0)),
                ("cog", (g["cognised"], g["hallu"])),
            ):
                gen[name][0].append(float(num))
                gen[name][1].append(float(den))
        else:
            truth = str(item.get("truth", "")).strip().lower()
            pred = parse_answer(text, strict=True)
            disc.append((str(rid), pred, truth))
            for dim in DIMENSIONS.get(str(item.get("type")), ("other",)):
                dims.setdefault(dim, []).append((pred, truth))
    summary: dict[str, Any] = {"n_generative": len(gen_keys), "n_discriminative": len(disc)}
    summary.update(_summarise(gen))
    d_parts = _discriminative_parts([(p, t) for _, p, t in disc])
    summary.update(_summarise(d_parts))
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
    similar: Callable[[str, str], bool] | None = None,
) -> dict[str, Any]:
    """AMBER scores of ``{id: response}`` (percent; NaN for a task with no responses)."""
    data = annotations if isinstance(annotations, AmberData) else load_amber(annotations)
    return score(responses, data, similar)[0]


def evaluate_run(run: Run, data: AmberData, similar: Callable[[str, str], bool] | None = None) -> MetricRun:
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
    summary, keys, parts, part_keys = score(responses, data, similar)
    return MetricRun(
        name=run.name, summary=summary, keys=keys, parts=parts, errors=errors, part_keys=part_keys
    )
