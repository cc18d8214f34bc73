"""check_yes_no(): POPE-style existence questions, flipped only when a detector that knows the class
disagrees."""

from __future__ import annotations

import json

import pytest

from halluguard.correctors.yesno import answer_polarity, check_yes_no, question_object, rewrite_answer
from halluguard.detectors.base import AnnotatedDetections
from halluguard.records import Detection, Detections

NOUNS = {
    "dog": "dog",
    "dogs": "dog",
    "puppy": "dog",
    "cat": "cat",
    "kitten": "cat",
    "dining table": "dining table",
    "table": "dining table",
    "person": "person",
    "people": "person",
    "man": "person",
    "umbrella": "umbrella",
    "giraffe": "giraffe",
    "car": "car",
    "apple": "apple",
    "hot dog": "hot dog",
}
label_of = NOUNS.get

# the detector knows dogs, cats, tables, people, umbrellas, cars, apples, hot dogs; it sees a cat,
# a table and two people (one weakly: 0.15)
SEEN = Detections(
    [
        Detection("cat", 0.9, (0, 0, 10, 10)),
        Detection("dining table", 0.8, (0, 20, 50, 50)),
        Detection("person", 0.7, (60, 0, 80, 50)),
        Detection("umbrella", 0.15, (0, 0, 5, 5)),
    ],
    (100, 60),
    frozenset({"dog", "cat", "dining table", "person", "umbrella", "car", "apple", "hot dog"}),
)

CASES = [
    # question, answer, expected new answer (None: unchanged)
    ("Is there a dog in the image?", "Yes", "No"),
    ("Is there a dog in the image?", "yes.", "no."),
    (
        "Is there a dog in the image?",
        "Yes, there is a dog in the image.",
        "No, there is no dog in the image.",
    ),
    ("Is there a dog in the image?", "Yes, there is a dog. It is lying on the sofa.", "No, there is no dog."),
    ("Is there a dog in the image?", "No, there is no dog.", None),
    (
        "Are there any dogs in the image?",
        "Yes, there are two dogs playing.",
        "No, there are no dogs playing.",
    ),
    (
        "Is there a puppy in the picture?",
        "Yes, a puppy is visible near the door.",
        "No, no puppy is visible near the door.",
    ),
    (
        "Does the image contain a dog?",
        "Yes, the image contains a dog.",
        "No, the image does not contain any dog.",
    ),
    ("Do you see a dog in the image?", "Yes, I can see a dog.", "No, I cannot see any dog."),
    ("Is there a cat in the image?", "No", "Yes"),
    (
        "Is there a cat in the image?",
        "No, there is no cat in the image.",
        "Yes, there is a cat in the image.",
    ),
    ("Is there a kitten in this image?", "No, there isn't a kitten.", "Yes, there is a kitten."),
    ("Is there a cat in the image?", "Yes, there is a cat on the table.", None),
    (
        "Is there a dining table in the image?",
        "No, I don't see a dining table.",
        "Yes, I can see a dining table.",
    ),
    ("Is there a table in the image?", "There is no table in the image.", "There is a table in the image."),
    ("Are there people in the image?", "No, there are no people.", "Yes, there are people."),
    ("Is there a man in the image?", "NO", "YES"),
    ("Is there a car in the image? Please answer yes or no.", "Yes", "No"),
    (
        "Answer with yes or no. Is there a car in the image?",
        "Yes, there is a red car.",
        "No, there is no red car.",
    ),
    ("Is there an apple in the image?", "Yes, a big one.", "No, there is no apple."),
    ("Is there an umbrella in the image?", "No.", None),  # only a weak umbrella: cannot tell
    ("Is there an umbrella in the image?", "Yes.", None),
    ("Is there a giraffe in the image?", "Yes.", None),  # the detector does not know giraffes
    ("Is there a hot dog in the image?", "Yes, there is a hot dog.", "No, there is no hot dog."),
]


@pytest.mark.parametrize("question, answer, expected", CASES)
def test_yes_no_cases(question, answer, expected):
    new, claim = check_yes_no(question, answer, SEEN, label_of)
    assert new == expected
    assert claim is not None
    assert claim.verdict == ("contradicted" if expected is not None else claim.verdict)
    assert answer[claim.start : claim.end] == claim.text
    json.dumps(claim.to_json())


def test_claim_describes_the_answer():
    new, claim = check_yes_no("Is there a puppy in the image?", "No.", SEEN, label_of)
    assert new is None and claim.label == "dog" and claim.kind == "object"
    assert claim.verdict == "supported"  # the answer "no" is right: the detector knows dogs and saw none
    assert claim.evidence["asserts"] == "absent" and claim.evidence["question_object"] == "puppy"
    new, claim = check_yes_no("Is there a cat in the image?", "Yes", SEEN, label_of)
    assert new is None and claim.verdict == "supported" and claim.evidence["asserts"] == "present"
    assert claim.evidence["boxes"] == [[0, 0, 10, 10]]
    _, unknown = check_yes_no("Is there a giraffe in the image?", "No", SEEN, label_of)
    assert unknown.verdict == "unverifiable"


@pytest.mark.parametrize(
    "question, answer",
    [
        ("What colour is the cat?", "Black."),
        ("Is there a dog or a cat in the image?", "Yes."),
        ("Is there a spaceship in the image?", "Yes."),  # no label for it
        ("Is there a dog in the image?", "Maybe, it is hard to say."),
        ("Is there a dog in the image?", ""),
        (None, "Yes."),
    ],
)
def test_not_a_checkable_pair(question, answer):
    assert check_yes_no(question, answer, SEEN, label_of) == (None, None)


def test_labels_only_annotations_can_flip():
    truth = AnnotatedDetections(
        [Detection("cat", 1.0, (0, 0, 0, 0))],
        None,
        frozenset({"cat", "dog"}),
        has_boxes=False,
        instances=False,
    )
    assert check_yes_no("Is there a dog in the image?", "Yes.", truth, label_of)[0] == "No."
    assert check_yes_no("Is there a cat in the image?", "No.", truth, label_of)[0] == "Yes."


def test_vocabulary_forms():
    class Vocabulary:
        def label_of(self, noun):
            return NOUNS.get(noun)

    for vocabulary in (NOUNS, label_of, Vocabulary()):
        assert check_yes_no("Is there a dog in the image?", "Yes", SEEN, vocabulary)[0] == "No"
    with pytest.raises(TypeError):
        check_yes_no("Is there a dog in the image?", "Yes", SEEN, 42)


def test_thresholds_pass_through():
    assert check_yes_no("Is there an umbrella in the image?", "No", SEEN, label_of, threshold=0.1)[0] == "Yes"
    assert (
        check_yes_no("Is there a person in the image?", "Yes", SEEN, label_of, threshold=0.8, min_score=0.75)[
            0
        ]
        == "No"
    )


def test_parsing_helpers():
    assert question_object("Is there a traffic light in the image?") == "traffic light"
    assert question_object("Are there any zebras in this picture?") == "zebras"
    assert question_object("Is a bicycle visible in the photo?") == "bicycle"
    assert question_object("Can you see a clock?") == "clock"
    assert question_object("Is the dog brown?") is None
    assert answer_polarity("Nope, nothing.")[0] == "no"
    assert answer_polarity("Yeah")[0] == "yes"
    assert answer_polarity("I can see a dog.")[0] == "yes"
    assert answer_polarity("Notably, the dog is brown.")[0] is None  # "No" must be a whole word
    assert rewrite_answer("Yes, there is a cat and a dog.", "no", "dog") == "No, there is no dog."
    with pytest.raises(ValueError):
        rewrite_answer("Yes", "maybe", "dog")
