"""AMBER scores from its annotation format, computed by hand on a tiny benchmark."""

from __future__ import annotations

import json

import pytest

from halluguard.metrics.amber import amber_scores, evaluate_run, load_amber
from halluguard.metrics.runs import Run, UsageError

ANNOTATIONS = [
    {"id": 1, "type": "generative", "truth": ["dog", "grass", "ship", "ship"], "hallu": ["cat", "frisbee"]},
    {"id": 2, "type": "generative", "truth": ["car", "road"], "hallu": ["person", "sign"]},
    {"id": 3, "type": "discriminative-hallucination", "truth": "yes"},
    {"id": 4, "type": "discriminative-hallucination", "truth": "no"},
    {"id": 5, "type": "discriminative-attribute-state", "truth": "no"},
    {"id": 6, "type": "discriminative-relation", "truth": "yes"},
    {"id": 7, "type": "relation", "truth": "no"},  # AMBER's "no" relation items have this type
]
RELATION = {
    "dog": ["puppy"],
    "cat": ["kitten"],
    "grass": ["lawn"],
    "ship": ["boat"],
    "car": ["vehicle"],
    "road": ["street"],
    "person": ["man"],
    "sign": [],
    "frisbee": [],
    "can": [],
}


@pytest.fixture
def amber_dir(tmp_path):
    (tmp_path / "annotations.json").write_text(json.dumps(ANNOTATIONS))
    (tmp_path / "relation.json").write_text(json.dumps(RELATION))
    (tmp_path / "safe_words.txt").write_text("street\n")
    return tmp_path


def test_generative_and_discriminative_by_hand(amber_dir):
    data = load_amber(amber_dir / "annotations.json")
    assert data.safe_words == {"street"} and data.association["dog"] == ["puppy"]
    responses = {
        # puppy -> dog (covered), lawn -> grass (covered), kitten -> hallucinated + cat cognised, boat -> ship
        1: "A puppy on the lawn chases a kitten toward two boats.",
        # vehicle -> car, street: safe word (counted, never hallucinated), man: hallucinated + cognised
        2: "A vehicle on the street and a man.",
        3: "Yes, there is.",
        4: "Yes",
        5: "No",
        6: "Maybe.",
        7: "No.",
    }
    s = amber_scores(responses, data)
    # object words: puppy lawn kitten boat | vehicle street man -> 7 words, 2 hallucinated
    assert s["chair"] == pytest.approx(100 * 2 / 7)
    # covered: dog grass ship (of 4 entries, "ship" listed twice) + car (of 2) -> 4 / 6
    assert s["cover"] == pytest.approx(100 * 4 / 6)
    assert s["hal"] == 100.0
    assert s["cog"] == pytest.approx(100 * 2 / 4)
    # discriminative, exactly "Yes"/"No" as the official script: preds None yes no None None
    # against truth yes no no yes no; "no" is the positive answer
    assert s["accuracy"] == pytest.approx(100 * 1 / 5) and s["unparsed"] == 3
    assert s["precision"] == pytest.approx(100.0)  # one "No" answer, right
    assert s["recall"] == pytest.approx(100 * 1 / 3)  # three "no" truths, one found
    assert s["dimensions"]["existence"]["accuracy"] == 0.0
    assert s["dimensions"]["attribute"]["n"] == 1 and s["dimensions"]["state"]["accuracy"] == 100.0
    # both relation types land in the relation dimension: one "yes" item, one "no" item
    assert s["dimensions"]["relation"]["n"] == 2 and s["dimensions"]["relation"]["recall"] == 0.0
    assert "other" not in s["dimensions"]


def test_lenient_answers_are_a_named_option(amber_dir):
    data = load_amber(amber_dir / "annotations.json")
    answers = {3: "Yes, there is.", 4: "Yes.", 5: "No.", 6: "Maybe.", 7: "No, it is not."}
    s = amber_scores(answers, data, lenient=True)
    # preds yes yes no None no against truth yes no no yes no
    assert s["accuracy"] == pytest.approx(100 * 3 / 5) and s["unparsed"] == 1
    assert s["dimensions"]["relation"]["recall"] == 100.0


def test_nouns_are_read_as_the_official_script_reads_them(amber_dir):
    data = load_amber(amber_dir / "annotations.json")
    # "can" is a modal verb here, not the object; "Dog" keeps its capital and is no vocabulary word
    s = amber_scores({2: "A man can be seen near a car."}, data)
    assert s["chair"] == pytest.approx(100 * 1 / 2)  # man (hallucinated), car (covered)
    s = amber_scores({2: "A car next to a can."}, data)
    assert s["chair"] == pytest.approx(100 * 1 / 2)  # the noun "can" is an object word, not in the image
    s = amber_scores({1: "Dog. A puppy."}, data)
    assert s["chair"] == 0.0 and s["cover"] == pytest.approx(100 * 1 / 4)  # only "puppy" counts


def test_without_relation_file_every_annotated_object_is_the_vocabulary():
    s = amber_scores({1: "A dog, a cat and a frisbee on grass."}, ANNOTATIONS)  # no "can": vocabulary
    assert s["chair"] == pytest.approx(100 * 2 / 4)
    assert s["cog"] == 100.0
    assert s["n_discriminative"] == 0 and s["accuracy"] != s["accuracy"]


def test_run_errors_and_bad_annotations(amber_dir, tmp_path):
    data = load_amber(amber_dir / "annotations.json")
    run = Run.from_records(
        [
            {"id": 1, "response": "A dog."},
            {"id": 77, "response": "x"},
            {"response": "no id"},
            {"id": 1, "response": "again"},
        ]
    )
    result = evaluate_run(run, data)
    assert result.summary["n_generative"] == 1
    assert [e["line"] for e in result.errors] == [2, 3, 4]
    (tmp_path / "x.json").write_text(json.dumps({"1": ["dog"]}))
    with pytest.raises(UsageError, match="AMBER"):
        load_amber(tmp_path / "x.json")
