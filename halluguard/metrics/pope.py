"""POPE: yes/no questions about objects ("Is there a dog in the image?").

Li et al., "Evaluating Object Hallucination in Large Vision-Language Models" (EMNLP 2023); the question
files and ``evaluate.py`` of the AoiDragon/POPE repository. Three splits differ in how the absent
objects of the "no" questions are drawn: ``random``, ``popular`` (the most frequent objects) and
``adversarial`` (objects that often co-occur with the ones present).

Answer parsing (:func:`parse_answer`):

- default, as POPE's ``evaluate.py``: keep the text before the first ".", drop commas, split on spaces;
  the answer is "no" if one of the words is exactly ``No``, ``no`` or ``not``, else "yes" (so an empty or
  evasive answer counts as yes, "Not sure" as no, and "NO" as yes).
- ``strict=True``: case-insensitive; the first word decides if it is yes or no ("Yes, there is" ->
  yes); otherwise the first sentence must contain the word "yes" or the word "no", not both ("There is
  no dog" -> no). Anything else ("Not sure", "I cannot tell", "") is ``None``: counted as wrong and
  reported as ``unparsed``.

Scores, with "yes" the positive class, in percent: accuracy, precision, recall, F1 and the share of
"yes" answers (``yes_ratio``; 50 % of the questions are "yes" by construction).

>>> parse_answer("No."), parse_answer("not sure"), parse_answer("Yes, there is a dog."), parse_answer("")
('no', 'no', 'yes', 'yes')
>>> parse_answer("I cannot tell", strict=True) is None
True
>>> s = pope_scores(["yes", "no", "yes", "yes"], ["yes", "no", "no", "yes"])
>>> [round(s[k], 1) for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")]
[75.0, 66.7, 100.0, 80.0, 75.0]
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from halluguard.metrics.runs import MetricRun, Run, UsageError, load_json_or_jsonl

__all__ = [
    "SPLITS", "evaluate_run", "generate_questions", "load_questions", "parse_answer", "pope_scores",
    "questions_from_run",
]

SPLITS = ("random", "popular", "adversarial")
RATES = ("accuracy", "precision", "recall", "f1", "yes_ratio")
TEMPLATE = "Is there {article} {object} in the image?"

_WORD = re.compile(r"[a-z']+")


def parse_answer(text: str | None, strict: bool = False) -> str | None:
    """``"yes"`` or ``"no"`` (or ``None`` when ``strict`` and undecidable); see the module docstring."""
    text = text or ""
    if not strict:
        first = text.split(".")[0] if "." in text else text
        words = first.replace(",", "").split(" ")
        return "no" if ("No" in words or "not" in words or "no" in words) else "yes"
    first = text.strip().lower().split(".")[0]
    words = _WORD.findall(first)
    if words and words[0] in ("yes", "no"):
        return words[0]
    found = {w for w in words if w in ("yes", "no")}
    return found.pop() if len(found) == 1 else None


def pope_parts(
    preds: Sequence[str | None], labels: Sequence[str], positive: str = "yes"
) -> dict[str, tuple[list[float], list[float]]]:
    """Per-question numerators/denominators of each rate (``None`` predictions count as wrong).

    ``positive``: the answer precision, recall and F1 are about (AMBER's discriminative part
    scores "no", the answer that catches a hallucinated object).
    """
    negative = "no" if positive == "yes" else "yes"
    acc, pre, rec, f1, yes = ([], []), ([], []), ([], []), ([], []), ([], [])
    for pred, label in zip(preds, labels):
        tp = pred == positive and label == positive
        fp = pred == positive and label == negative
        fn = pred != positive and label == positive
        acc[0].append(float(pred == label))
        acc[1].append(1.0)
        pre[0].append(float(tp))
        pre[1].append(float(pred == positive))
        rec[0].append(float(tp))
        rec[1].append(float(label == positive))
        f1[0].append(2.0 * tp)
        f1[1].append(2.0 * tp + fp + fn)
        yes[0].append(float(pred == "yes"))
        yes[1].append(1.0)
    return {"accuracy": acc, "precision": pre, "recall": rec, "f1": f1, "yes_ratio": yes}


def pope_scores(preds: Sequence[str | None], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, yes-ratio (percent; NaN where undefined) and the counts."""
    out: dict[str, Any] = {}
    for name, (num, den) in pope_parts(preds, labels).items():
        total = sum(den)
        out[name] = 100.0 * sum(num) / total if total else float("nan")
    out["n"] = len(labels)
    out["tp"] = sum(1 for p, y in zip(preds, labels) if p == "yes" and y == "yes")
    out["fp"] = sum(1 for p, y in zip(preds, labels) if p == "yes" and y == "no")
    out["tn"] = sum(1 for p, y in zip(preds, labels) if p == "no" and y == "no")
    out["fn"] = sum(1 for p, y in zip(preds, labels) if p != "yes" and y == "yes")
    out["unparsed"] = sum(1 for p in preds if p is None)
    return out


# --------------------------------------------------------------------------- question files


def _split_of(path: Path) -> str:
    name = path.stem.lower()
    for split in SPLITS:
        if split in name:
            return split
    return path.stem


def load_questions(*paths: str | Path) -> list[dict[str, Any]]:
    """POPE questions from question files or folders of them (``*.json``/``*.jsonl``).

    Each question keeps its fields and gains ``split`` (from a ``split``/``category`` field, else from
    the file name: ``coco_pope_adversarial.json`` -> ``adversarial``). Labels are lower-cased; lines
    may end in CRLF. lmms-eval's POPE rows (``answer`` instead of ``label``) are read too, and files
    whose name says RePOPE (``coco_repope_random.json``) are RePOPE's re-annotation: questions it
    removed are left out of the scores, with that reason.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix in (".json", ".jsonl")))
        else:
            files.append(p)
    if not files:
        raise UsageError("POPE needs question files: pass --annotations FILE_OR_FOLDER")
    questions = []
    for path in files:
        data = load_json_or_jsonl(path)
        items = data if isinstance(data, list) else [data]
        for number, q in enumerate(items, start=1):
            if isinstance(q, dict) and "label" not in q and str(q.get("answer", "")).strip().lower() in ("yes", "no"):
                q = dict(q, label=q["answer"])  # lmms-eval's POPE data
            if not isinstance(q, dict) or "label" not in q or "question_id" not in q:
                raise UsageError(
                    f"{path}, item {number}: not a POPE question (expected question_id, image, text, label)"
                )
            label = str(q["label"]).strip().lower()
            if label not in ("yes", "no"):
                raise UsageError(f"{path}, item {number}: label should be yes or no, got {q['label']!r}")
            q = dict(q, label=label)
            q["split"] = str(q.get("split") or q.get("category") or _split_of(path))
            if "repope" in path.name.lower():
                q["source"] = "repope"
            questions.append(q)
    return questions


def questions_from_run(run: Run) -> list[dict[str, Any]]:
    """The questions a run carries itself (harness files hold each question's label), or ``[]``."""
    questions, seen = [], set()
    for rec in run.records:
        record = rec.record
        label = str(record.get("label", "")).strip().lower()
        if "question_id" not in record or label not in ("yes", "no"):
            return []
        key = (str(record.get("split", "all")), str(record["question_id"]))
        if key not in seen:
            seen.add(key)
            questions.append({"question_id": record["question_id"], "label": label, "split": key[0]})
    return questions


# --------------------------------------------------------------------------- scoring runs


def evaluate_run(run: Run, questions: list[dict[str, Any]], strict: bool = False) -> MetricRun:
    """Score a run's answers against POPE questions, overall and per split.

    Answers are matched by ``question_id`` (and ``split``/``category`` when there are several splits);
    a run without question ids is matched to the questions in order, as POPE's ``evaluate.py`` does.
    """
    return finish(run.name, *score_records(run, questions, strict=strict), splits=_splits(questions))


def _splits(questions: list[dict[str, Any]]) -> list[str]:
    order = {name: i for i, name in enumerate(SPLITS)}
    return sorted({q["split"] for q in questions}, key=lambda x: (order.get(x, len(order)), x))


def score_records(
    run: Run, questions: list[dict[str, Any]], strict: bool = False, in_order: bool = True
) -> tuple[list[tuple[str, dict[str, Any], str | None]], list[dict[str, Any]]]:
    """The per-record half of :func:`evaluate_run`: ``(key, question, prediction)`` per answer, and errors.

    ``in_order=False`` (a slice of a run, e.g. on a cluster) refuses answers without question ids,
    which can only be matched against the whole run.
    """
    errors = list(run.errors)
    splits = _splits(questions)
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for q in questions:
        by_key[(q["split"], str(q["question_id"]))] = q
    matched: list[tuple[str, dict[str, Any], str | None]] = []  # (key, question, prediction)
    with_ids = [r for r in run.records if "question_id" in r.record]
    if not with_ids and run.records:
        if not in_order or len(run.records) != len(questions):
            raise UsageError(
                f"{run.name}: answers have no question_id and their number ({len(run.records)}) differs "
                f"from the number of questions ({len(questions)}); add question_id to each answer"
            )
        for rec, q in zip(run.records, questions):
            matched.append((f"{q['split']}/{q['question_id']}", q, parse_answer(rec.text, strict)))
        return matched, errors
    for rec in run.records:
        qid = rec.record.get("question_id")
        if qid is None:
            errors.append({"line": rec.line, "reason": "no 'question_id' field"})
            continue
        split = rec.record.get("split") or rec.record.get("category")
        if split is None:
            if len(splits) > 1:
                errors.append(
                    {
                        "line": rec.line,
                        "reason": f"question files have several splits ({', '.join(splits)}): "
                        "the answer needs a 'split' or 'category' field",
                    }
                )
                continue
            split = splits[0] if splits else ""
        q = by_key.get((str(split), str(qid)))
        if q is None:
            reason = "is not in the question files"
            if any(one.get("source") == "repope" for one in questions):
                reason = "was removed by RePOPE as ambiguous: not scored"
            errors.append({"line": rec.line, "reason": f"question {qid!r} ({split}) {reason}"})
            continue
        matched.append((f"{q['split']}/{q['question_id']}", q, parse_answer(rec.text, strict)))
    return matched, errors


def finish(
    name: str, matched: list[tuple[str, dict[str, Any], str | None]], errors: list[dict[str, Any]], splits: list[str]
) -> MetricRun:
    """The whole-run half of :func:`evaluate_run`: scores overall and per split."""
    preds = [m[2] for m in matched]
    labels = [m[1]["label"] for m in matched]
    result = MetricRun(
        name=name,
        summary=pope_scores(preds, labels),
        keys=[m[0] for m in matched],
        parts=pope_parts(preds, labels),
        errors=sorted(errors, key=lambda e: e["line"]),
    )
    if len(splits) > 1:
        for split in splits:
            idx = [i for i, m in enumerate(matched) if m[1]["split"] == split]
            p, y = [preds[i] for i in idx], [labels[i] for i in idx]
            result.groups[split] = MetricRun(
                name=split,
                summary=pope_scores(p, y),
                keys=[result.keys[i] for i in idx],
                parts=pope_parts(p, y),
            )
    return result


# --------------------------------------------------------------------------- building questions


def _question(qid: int, image: str, obj: str, label: str, template: str) -> dict[str, Any]:
    article = "an" if obj[:1].lower() in "aeiou" else "a"
    return {
        "question_id": qid,
        "image": image,
        "text": template.format(article=article, object=obj),
        "label": label,
    }


def generate_questions(
    objects: dict[Any, Iterable[str]],
    strategy: str = "random",
    n_per_image: int = 3,
    seed: int = 0,
    template: str = TEMPLATE,
    image_name: str = "{}",
) -> list[dict[str, Any]]:
    """Build POPE questions from the objects in each image, as POPE's ``utils.py`` does.

    For each image with at least ``n_per_image`` objects: ``n_per_image`` "yes" questions about its
    first objects, each followed by a "no" question about an object not in the image, drawn
    ``random``-ly from all objects, from the most frequent (``popular``), or from those most often seen
    with the "yes" object (``adversarial``; falls back to random). ``seed`` makes the draw reproducible;
    ``image_name`` formats the image field (e.g. ``"COCO_val2014_{:012d}.jpg"`` for integer ids).

    >>> objects = {1: ["person", "car"], 2: ["person", "dog"], 3: ["apple", "dog"]}
    >>> [(q["image"], q["text"], q["label"]) for q in generate_questions(objects, "popular", 1)][:2]
    [('1', 'Is there a person in the image?', 'yes'), ('1', 'Is there a dog in the image?', 'no')]
    """
    if strategy not in SPLITS:
        raise UsageError(f"unknown POPE strategy {strategy!r}; valid: {', '.join(SPLITS)}")
    rng = random.Random(seed)
    images = {k: list(dict.fromkeys(v)) for k, v in objects.items()}
    images = {k: v for k, v in images.items() if len(v) >= n_per_image}
    frequency = Counter(o for objs in images.values() for o in objs)
    everything = sorted(frequency)
    popular = [o for o, _ in sorted(frequency.items(), key=lambda x: (-x[1], x[0]))]
    co_occur: dict[str, Counter[str]] = {}
    for objs in images.values():
        for a in objs:
            co_occur.setdefault(a, Counter()).update(b for b in objs if b != a)
    questions: list[dict[str, Any]] = []
    for key, objs in images.items():
        try:
            name = image_name.format(key)
        except (ValueError, TypeError):
            name = image_name.format(int(key))
        asked: list[str] = []
        for positive in objs[:n_per_image]:
            asked.append(positive)
            questions.append(_question(len(questions) + 1, name, positive, "yes", template))
            if strategy == "popular":
                pool = popular
            elif strategy == "adversarial":
                pool = [o for o, _ in sorted(co_occur[positive].items(), key=lambda x: (-x[1], x[0]))]
            else:
                pool = []
            negative = next((o for o in pool if o not in asked and o not in objs), None)
            if negative is None:
                candidates = [o for o in everything if o not in asked and o not in objs]
                negative = rng.choice(candidates) if candidates else None
            if negative is None:
                continue
            asked.append(negative)
            questions.append(_question(len(questions) + 1, name, negative, "no", template))
    return questions


def load_objects(path: str | Path) -> dict[str, list[str]]:
    """Objects per image for :func:`generate_questions`, from any ground truth CHAIR reads."""
    from halluguard.metrics.chair import load_ground_truth

    return {k: sorted(v) for k, v in load_ground_truth(path).items()}
