"""POPE: answer parsing edge cases, hand-computed scores, question files, matching, question generation."""

from __future__ import annotations

import json

import pytest

from halluguard.metrics.pope import (
    evaluate_run,
    generate_questions,
    load_questions,
    parse_answer,
    pope_scores,
)
from halluguard.metrics.runs import Run, UsageError


@pytest.mark.parametrize(
    ("text", "default", "strict"),
    [
        ("No.", "no", "no"),
        ("No", "no", "no"),
        ("no, there is no dog", "no", "no"),
        ("not sure", "no", None),
        ("Not sure", "yes", None),  # POPE's evaluate.py only knows lower-case "not"
        ("Yes, there is", "yes", "yes"),
        ("Yes, there is a dog in the image.", "yes", "yes"),
        ("Yes. There is no cat, though.", "yes", "yes"),  # only the first sentence counts
        ("There is no dog in the image.", "no", "no"),
        ("NO", "yes", "no"),
        ("", "yes", None),
        (None, "yes", None),
        ("I cannot tell.", "yes", None),
        ("Yes! No cat.", "no", "yes"),
        ("I see no dog, yes.", "no", None),
    ],
)
def test_parse_answer(text, default, strict):
    assert parse_answer(text) == default
    assert parse_answer(text, strict=True) == strict


def test_scores_by_hand():
    preds = ["yes", "yes", "no", "no", "yes", None]
    labels = ["yes", "no", "no", "yes", "yes", "no"]
    s = pope_scores(preds, labels)
    # TP=2 FP=1 TN=1 FN=1, one unparsed "no" question counted wrong
    assert (s["tp"], s["fp"], s["tn"], s["fn"], s["unparsed"], s["n"]) == (2, 1, 1, 1, 1, 6)
    assert s["accuracy"] == pytest.approx(100 * 3 / 6)
    assert s["precision"] == pytest.approx(100 * 2 / 3)
    assert s["recall"] == pytest.approx(100 * 2 / 3)
    assert s["f1"] == pytest.approx(100 * 2 / 3)
    assert s["yes_ratio"] == pytest.approx(100 * 3 / 6)
    none = pope_scores(["no", "no"], ["no", "no"])
    assert none["precision"] != none["precision"]  # undefined (no "yes"), NaN rather than a crash


def _write_questions(path, split_rows, crlf=False):
    end = "\r\n" if crlf else "\n"
    path.write_text("\ufeff" + end.join(json.dumps(q) for q in split_rows) + end, encoding="utf-8")


def _qs(n=4):
    return [
        {
            "question_id": i + 1,
            "image": f"COCO_val2014_{i:012d}.jpg",
            "text": "Is there a dog?",
            "label": "yes" if i % 2 == 0 else "no",
        }
        for i in range(n)
    ]


def test_load_questions_crlf_bom_and_split_from_file_name(tmp_path):
    _write_questions(tmp_path / "coco_pope_adversarial.json", _qs(), crlf=True)
    questions = load_questions(tmp_path / "coco_pope_adversarial.json")
    assert len(questions) == 4 and {q["split"] for q in questions} == {"adversarial"}
    bad = _qs(1)
    bad[0]["label"] = "maybe"
    _write_questions(tmp_path / "bad.json", bad)
    with pytest.raises(UsageError, match="label"):
        load_questions(tmp_path / "bad.json")


def test_evaluate_by_question_id_and_by_order(tmp_path):
    questions = [dict(q, split="random") for q in _qs()]
    answers = [
        {"question_id": 4, "answer": "No."},
        {"question_id": 1, "answer": "Yes"},
        {"question_id": 2, "answer": "Yes"},
        {"question_id": 99, "answer": "Yes"},
        {"question_id": 3, "text": "yes"},
    ]
    result = evaluate_run(Run.from_records(answers, name="r"), questions)
    assert result.summary["n"] == 4 and result.summary["accuracy"] == 75.0
    assert [e["line"] for e in result.errors] == [4]
    by_order = Run.from_records([{"answer": "Yes"}, {"answer": "No"}, {"answer": "Yes"}, {"answer": "No"}])
    assert evaluate_run(by_order, questions).summary["accuracy"] == 100.0
    with pytest.raises(UsageError, match="question_id"):
        evaluate_run(Run.from_records([{"answer": "Yes"}]), questions)


def test_several_splits_need_the_split_field(tmp_path):
    for split in ("random", "popular"):
        _write_questions(tmp_path / f"coco_pope_{split}.json", _qs())
    questions = load_questions(tmp_path)
    answers = [
        {"question_id": q["question_id"], "split": split, "answer": "Yes"}
        for split in ("random", "popular")
        for q in _qs()
    ] + [{"question_id": 1, "answer": "Yes"}]
    result = evaluate_run(Run.from_records(answers), questions)
    assert result.summary["n"] == 8 and set(result.groups) == {"popular", "random"}
    assert result.groups["random"].summary["yes_ratio"] == 100.0
    assert "several splits" in result.errors[0]["reason"]


@pytest.mark.parametrize("strategy", ["random", "popular", "adversarial"])
def test_generated_questions_are_balanced_and_correct(strategy):
    objects = {
        1: ["person", "dog", "frisbee"],
        2: ["person", "car", "truck", "bus"],
        3: ["apple", "banana", "knife"],
        4: ["person", "dog", "car"],
        5: ["cat"],
    }
    qs = generate_questions(objects, strategy, n_per_image=3, seed=1, image_name="COCO_val2014_{:012d}.jpg")
    assert qs == generate_questions(
        objects, strategy, n_per_image=3, seed=1, image_name="COCO_val2014_{:012d}.jpg"
    )
    assert [q["question_id"] for q in qs] == list(range(1, len(qs) + 1))
    assert {q["image"] for q in qs} == {
        f"COCO_val2014_{i:012d}.jpg" for i in (1, 2, 3, 4)
    }  # 5 has < 3 objects
    for key in (1, 2, 3, 4):
        mine = [q for q in qs if q["image"].endswith(f"{key:012d}.jpg")]
        yes = [q for q in mine if q["label"] == "yes"]
        no = [q for q in mine if q["label"] == "no"]
        assert len(yes) == len(no) == 3
        for q in no:
            obj = q["text"].removeprefix("Is there a ").removeprefix("n ").removesuffix(" in the image?")
            assert obj not in objects[key]
    assert "Is there an apple in the image?" in {q["text"] for q in qs}
    if strategy == "popular":  # the most frequent absent object comes first
        first_no = next(q for q in qs if q["label"] == "no" and q["image"].endswith("3.jpg"))
        assert first_no["text"] == "Is there a person in the image?"
    if strategy == "adversarial":  # dog co-occurs with person twice: asked about for image 2
        texts = [q["text"] for q in qs if q["label"] == "no" and q["image"].endswith("2.jpg")]
        assert "Is there a dog in the image?" in texts
