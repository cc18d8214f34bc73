"""AMBER by default equals its official ``inference.py`` (``official_amber.py`` re-implements it)."""

from __future__ import annotations

import pytest
from official_amber import main as official

from halluguard.metrics.amber import AmberData, amber_scores, extract_nouns

ASSOCIATION = {
    "dog": ["puppy", "pup"], "cat": ["kitten"], "grass": ["lawn", "turf"], "ship": ["boat", "vessel"],
    "car": ["vehicle", "sedan"], "road": ["street"], "person": ["man", "woman", "people"],
    "sign": [], "frisbee": ["disc"], "can": [], "table": ["desk"], "cup": ["mug"], "tree": [],
    "bench": [], "vase": [],
}  # fmt: skip
ANNOTATIONS = [
    {"id": 1, "type": "generative", "truth": ["dog", "grass", "ship", "ship"], "hallu": ["cat", "frisbee"]},
    {"id": 2, "type": "generative", "truth": ["car", "road"], "hallu": ["person", "sign"]},
    {"id": 3, "type": "generative", "truth": ["table", "cup"], "hallu": ["vase", "can"]},
    {"id": 4, "type": "generative", "truth": ["tree"], "hallu": ["bench"]},
    *[{"id": 5 + i, "type": t, "truth": v} for i, (t, v) in enumerate([
        ("discriminative-hallucination", "no"), ("discriminative-hallucination", "yes"),
        ("discriminative-attribute-state", "yes"), ("discriminative-attribute-number", "no"),
        ("discriminative-attribute-action", "no"), ("discriminative-relation", "yes"), ("relation", "no"),
        ("relation", "no"), ("discriminative-hallucination", "no"), ("discriminative-attribute-state", "no"),
    ])],
]  # fmt: skip
SAFE_WORDS = ["street", "line"]
RESPONSES = {
    1: "A puppy on the lawn chases a kitten toward two boats. The Dog barks; a disc lies in the turf.",
    2: "A man can be seen near a sedan on the street, and a woman reads a sign. People walk by vehicles.",
    3: "A mug and a can sit on the desk next to a vase; cups and tables, men's hats, vases.",
    4: "",
    5: "No", 6: "Yes", 7: "Yes.", 8: "No", 9: "no", 10: "Yes", 11: "No", 12: "No, there is not.",
    13: " No", 14: "Maybe",
}  # fmt: skip
NEAR = {frozenset(("vessel", "boat")), frozenset(("woman", "person")), frozenset(("hat", "cup"))}


def _similar(a: str, b: str) -> bool:
    return a == b or frozenset((a, b)) in NEAR


@pytest.mark.parametrize("similar", [None, _similar], ids=["no vectors", "vectors"])
def test_amber_equals_the_official_script(similar):
    data = AmberData({x["id"]: x for x in ANNOTATIONS}, ASSOCIATION, frozenset(SAFE_WORDS))
    ours = amber_scores(RESPONSES, data, similar=similar)
    expected = official(
        [{"id": k, "response": v} for k, v in RESPONSES.items()],
        ANNOTATIONS,
        ASSOCIATION,
        SAFE_WORDS,
        lambda text: extract_nouns([text])[0],
        similar or (lambda a, b: False),
    )
    # the counts behind every rate are the official ones (its counters start at 0.001: data/metrics.txt)
    counters = expected["counters"]

    def rate(score, num, prefixes=("",)):
        total = sum(counters[f"{p}{num}"] - 0.001 for p in prefixes)
        return 100.0 * sum(counters[f"{p}{score}"] for p in prefixes) / total

    assert ours["chair"] == pytest.approx(rate("chair_score", "chair_num"))
    assert ours["cover"] == pytest.approx(rate("safe_cover_score", "safe_cover_num"))
    assert ours["cog"] == pytest.approx(rate("hallu_cover_score", "hallu_cover_num"))
    assert ours["hal"] == pytest.approx(100 - rate("non_hallu_score", "non_hallu_num"))
    for dimension, prefixes in (("", ("",)), ("existence", ("ha_",)), ("attribute", ("as_", "an_", "aa_")),
                                ("relation", ("asso_",))):
        row = ours["dimensions"][dimension] if dimension else ours
        assert row["accuracy"] == pytest.approx(rate("qa_correct_score", "qa_correct_num", prefixes))
        assert row["precision"] == pytest.approx(rate("qa_ans_no_score", "qa_ans_no_num", prefixes))
        assert row["recall"] == pytest.approx(rate("qa_no_score", "qa_no_num", prefixes))


def test_nouns_as_the_official_script_reads_them():
    nouns = extract_nouns(["A man can be seen near two cans. The Dog and the women sit on benches."])[0]
    assert nouns.count("can") == 1  # "cans" is a noun; the modal verb is not
    assert "Dog" in nouns and "dog" not in nouns  # case kept, as the official script keeps it
    assert "bench" in nouns  # WordNet's lemma
