"""LURE-style suspicion: token alignment, the three scores, co-occurrence statistics and the command."""

from __future__ import annotations

import json
import math

import pytest

from halluguard.correctors.lure import (
    CooccurrenceStats,
    align_tokens,
    position_score,
    select_suspicious,
    suspicion,
    suspicion_components,
    uncertainty_score,
)
from halluguard.records import Claim

TEXT = "A man rides a horse on the beach next to a dog."


def _claims() -> list[Claim]:
    return [
        Claim("man", 2, 5, "object", "person"),
        Claim("horse", 14, 19, "object", "horse"),
        Claim("dog", 43, 46, "object", "dog"),
    ]


def test_scores_cross_one_half_at_the_lure_thresholds() -> None:
    assert position_score(0.0) == 0.0 and position_score(0.8) == 0.5 and position_score(1.0) == 1.0
    assert position_score(0.4) == pytest.approx(0.25) and position_score(0.9) == pytest.approx(0.75)
    assert uncertainty_score(0.9) == 0.5 and uncertainty_score(0.0) == 0.0
    assert uncertainty_score(-math.log(0.01)) > 0.8


def test_align_sentencepiece_and_byte_level_tokens() -> None:
    sp = [("▁A", -0.1), ("▁man", -0.2), ("▁r", -1.0), ("ides", -0.5), ("<0x0A>", -0.1), ("▁a", -0.1)]
    assert align_tokens("A man rides a", sp) == [
        (0, 1, -0.1),
        (2, 5, -0.2),
        (6, 7, -1.0),
        (7, 11, -0.5),
        (12, 13, -0.1),
    ]
    gpt = [
        {"token": "A", "logprob": -0.1},
        {"token": "Ġdog", "logprob": -2.0},
        {"token": ".", "logprob": -0.3},
    ]
    assert align_tokens("A dog.", gpt) == [(0, 1, -0.1), (2, 5, -2.0), (5, 6, -0.3)]
    broken = [
        {"token": "A"},
        {"logprob": -1.0},
        "x",
        {"token": "dog", "logprob": float("nan")},
        ("dog", -1.5),
    ]
    assert align_tokens("A dog.", broken) == [(2, 5, -1.5)]


def test_suspicion_from_position_only() -> None:
    claims = _claims()
    suspicion(TEXT, claims)
    scores = [c.suspicion for c in claims]
    assert scores == sorted(scores) and scores[0] < 0.1 and scores[-1] > 0.5
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_logprobs_make_an_early_object_suspicious() -> None:
    tokens = [
        {"token": w, "logprob": -4.0 if w == "horse" else -0.01} for w in TEXT.replace(".", " .").split()
    ]
    claims = _claims()
    parts = suspicion_components(TEXT, claims, tokens)
    assert parts[1]["uncertainty"] == pytest.approx(4.0 / 4.9)
    suspicion(TEXT, claims, tokens)
    assert [c.suspicion >= 0.5 for c in claims] == [False, True, False]


def test_cooccurrence_counts_objects_named_earlier() -> None:
    stats = CooccurrenceStats.from_label_sets(
        [{"person", "horse", "dog"}, {"person", "dog"}, {"horse"}, {"cat"}]
    )
    parts = suspicion_components(TEXT, _claims(), None, stats)
    assert parts[0]["cooccurrence"] == 0.0  # nothing named before "man"
    assert parts[1]["cooccurrence"] == pytest.approx(0.5)  # P(horse | person)
    assert parts[2]["cooccurrence"] == pytest.approx(1.0)  # P(dog | person)
    claims = _claims()
    suspicion(TEXT, claims, None, stats, weights={"cooccurrence": 1.0})
    assert [c.suspicion for c in claims] == [0.0, 0.5, 1.0]


def test_select_suspicious_leaves_supported_and_contradicted_to_the_detector() -> None:
    claims = _claims() + [Claim("two dogs", 30, 38, "count", "dog")]
    for claim, verdict in zip(claims, ["supported", "unverifiable", "contradicted", "unverifiable"]):
        claim.verdict, claim.suspicion = verdict, 0.9
    assert select_suspicious(claims, 0.5) == [claims[1]]
    assert select_suspicious(claims, 0.95) == []


def test_statistics_from_coco_instances_and_round_trip(tmp_path) -> None:
    coco = {
        "images": [{"id": 1}, {"id": 2}, {"id": 3}],
        "categories": [{"id": 44, "name": "bottle"}, {"id": 46, "name": "wine glass"}, {"id": 67, "name": "dining table"}],
        "annotations": [
            {"image_id": 1, "category_id": 44}, {"image_id": 1, "category_id": 44}, {"image_id": 1, "category_id": 67},
            {"image_id": 2, "category_id": 46}, {"image_id": 2, "category_id": 67},
        ],
    }  # fmt: skip
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    stats = CooccurrenceStats.from_annotations(path)
    assert stats.n_images == 3 and stats.counts == {"bottle": 1, "dining table": 2, "wine glass": 1}
    assert (
        stats.conditional("dining table", "bottle") == 1.0
        and stats.conditional("bottle", "dining table") == 0.5
    )
    assert stats.probability("wine glass") == pytest.approx(1 / 3) and stats.conditional("cat", "dog") == 0.0
    stats.save(tmp_path / "stats.json")
    again = CooccurrenceStats.load(tmp_path / "stats.json")
    assert again.to_json() == stats.to_json()


def test_statistics_from_label_tables(tmp_path, coco500) -> None:
    table = tmp_path / "labels.json"
    table.write_text(json.dumps({"a.jpg": ["dog", {"label": "frisbee", "box": [0, 0, 1, 1]}], "b.jpg": []}))
    stats = CooccurrenceStats.from_annotations(table)
    assert stats.n_images == 2 and stats.conditional("frisbee", "dog") == 1.0
    real = CooccurrenceStats.from_annotations(coco500 / "gt_objects.json")
    assert real.n_images == 500 and 0.0 < real.conditional("fork", "knife") <= 1.0
    assert real.conditional("dining table", "fork") > real.probability("dining table")


@pytest.mark.parametrize(
    "content,message",
    [("{nope", "cannot read annotations"), ('{"a.jpg": "dog"}', "list of labels"), ('{"a.jpg": [3]}', "neither a string"),
     ("[1]", "expected COCO instances")],
)  # fmt: skip
def test_bad_annotation_files(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        CooccurrenceStats.from_annotations(path)


def test_loading_something_else_names_the_command(tmp_path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"a": 1}')
    with pytest.raises(ValueError, match="halluguard cooccurrence ANNOTATIONS"):
        CooccurrenceStats.load(path)


def test_cooccurrence_command(tmp_path) -> None:
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from halluguard.correctors.cli import cooccurrence_command

    app = typer.Typer()
    app.command("cooccurrence")(cooccurrence_command)
    app.command("other")(lambda: None)  # more than one command: typer keeps the subcommand name
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"1": ["knife", "fork"], "2": ["knife"]}))
    out = tmp_path / "deep" / "stats.json"
    result = CliRunner().invoke(app, ["cooccurrence", str(labels), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 images, 2 labels" in result.output
    assert CooccurrenceStats.load(out).conditional("fork", "knife") == 0.5
    missing = CliRunner().invoke(app, ["cooccurrence", str(tmp_path / "none.json"), "-o", str(out)])
    assert missing.exit_code == 2 and "not found" in missing.output
