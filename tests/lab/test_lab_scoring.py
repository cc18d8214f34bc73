"""Scoring lab captions: CHAIR over the lab kinds and the prior-driven rate, on hand-computed cases."""

import math

import pytest

from halluguard.lab import scoring


def test_mentions_read_counts_colours_and_size():
    found = scoring.mentions("there are two small red crosses, an orange circle and a star.")
    assert [(m.kind, m.count, m.colour, m.small) for m in found] == [
        ("cross", 2, "red", True), ("circle", 1, "orange", False), ("star", 1, None, False)]
    assert scoring.mentions("") == []


def test_rates_by_hand():
    truths = [{"kinds": ["moon"]}, {"kinds": ["circle", "square"]}, {"kinds": ["arrow", "diamond"]}]
    captions = [
        "there are a white moon and a small blue star.",   # star: prior-driven hallucination
        "there are a red circle and a blue star.",         # star named with neither moon nor star: control
        "there are a red arrow and a blue diamond.",       # all right
    ]
    s = scoring.score(captions, truths)
    r = s.rates()
    assert r["chair_i"] == pytest.approx(100 * 2 / 6)
    assert r["chair_s"] == pytest.approx(100 * 2 / 3)
    assert r["recall"] == pytest.approx(100 * 4 / 5)
    # trials: image 1: (moon, star) prior, (arrow, diamond) control; image 2: both control; image 3: (moon, star) control
    assert r["prior"] == 100.0
    assert r["control"] == pytest.approx(100 * 1 / 4)
    summary = s.summary(n_resamples=200)
    lo, hi = summary["chair_s_ci"]
    assert 0 <= lo <= summary["chair_s"] <= hi <= 100
    assert summary["n"] == 3 and summary["avg_words"] == pytest.approx(28 / 3)


def test_empty_caption_recalls_nothing_and_hallucinates_nothing():
    r = scoring.score([""], [{"kinds": ["circle"]}]).rates()
    assert r["recall"] == 0 and r["chair_s"] == 0 and math.isnan(r["chair_i"]) and math.isnan(r["prior"])


def test_score_needs_aligned_inputs():
    with pytest.raises(ValueError, match="2 captions for 1 images"):
        scoring.score(["a", "b"], [{"kinds": []}])
