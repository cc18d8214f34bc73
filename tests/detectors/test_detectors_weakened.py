"""WeakenedDetector: seeded misses and false objects, deterministic per image key and seed."""

from __future__ import annotations

import json

import pytest

from halluguard.detectors import CachedDetector, WeakenedDetector
from halluguard.detectors.annotations import AnnotationDetector
from halluguard.images import ImageRef

LABELS = ["person", "dog", "cat", "car", "bus", "chair", "cup", "bed", "tv", "kite"]


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """400 images, each with 5 boxed objects."""
    data = {}
    for i in range(400):
        data[str(i)] = {
            "objects": [{"label": LABELS[(i + k) % 7], "box": [k * 10, 0, k * 10 + 8, 8]} for k in range(5)],
            "size": [100, 50],
        }
    path = tmp_path_factory.mktemp("weak") / "gt.json"
    path.write_text(json.dumps(data))
    return AnnotationDetector(path, vocabulary=LABELS)


def refs(n, start=0):
    return [ImageRef(None, str(i)) for i in range(start, start + n)]


def test_rates_match_the_probabilities(truth):
    weak = WeakenedDetector(truth, miss=0.2, add=0.1, seed=0)
    images = refs(400)
    original = truth.detect(images)
    weakened = weak.detect(images)
    true_total = sum(len(r.detections) for r in original)
    kept = added = 0
    for before, after in zip(original, weakened):
        before_set = {(d.label, d.box) for d in before.detections}
        extra = [d for d in after.detections if (d.label, d.box) not in before_set]
        added += len(extra)
        kept += len(after.detections) - len(extra)
        present = {d.label for d in before.detections}
        for d in extra:
            assert d.label in truth.vocabulary and d.label not in present
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 < x2 <= 100 and 0 <= y1 < y2 <= 50
        assert len(extra) <= 1
    miss_rate = 1 - kept / true_total
    assert 0.16 < miss_rate < 0.24, miss_rate  # 2000 objects: sd of the rate is about 0.009
    assert 0.05 < added / 400 < 0.15, added


def test_deterministic_per_key_and_seed_whatever_the_batch(truth):
    weak = WeakenedDetector(truth, seed=3)
    together = weak.detect(refs(50))
    reversed_alone = [weak.detect([ref])[0] for ref in reversed(refs(50))][::-1]
    assert [r.detections for r in together] == [r.detections for r in reversed_alone]
    again = WeakenedDetector(truth, seed=3).detect(refs(50))
    assert [r.detections for r in again] == [r.detections for r in together]
    other = WeakenedDetector(truth, seed=4).detect(refs(50))
    assert [r.detections for r in other] != [r.detections for r in together]


def test_identity_and_total_loss(truth):
    images = refs(20)
    original = truth.detect(images)
    assert [r.detections for r in WeakenedDetector(truth, miss=0, add=0).detect(images)] == [
        r.detections for r in original
    ]
    blind = WeakenedDetector(truth, miss=1.0, add=0).detect(images)
    assert all(r.detections == [] for r in blind)
    assert all(r.vocabulary == truth.vocabulary and r.has_boxes for r in blind)


def test_labels_only_annotations_get_box_free_false_objects(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({str(i): ["person"] for i in range(200)}))
    detector = AnnotationDetector(path, vocabulary=LABELS)
    weakened = WeakenedDetector(detector, miss=0.0, add=1.0).detect(refs(200))
    for result in weakened:
        assert len(result.detections) == 2 and not result.has_boxes
        assert result.detections[1].box == (0.0, 0.0, 0.0, 0.0)


def test_invalid_probabilities(truth):
    with pytest.raises(ValueError, match="miss"):
        WeakenedDetector(truth, miss=1.5)
    with pytest.raises(ValueError, match="add"):
        WeakenedDetector(truth, add=-0.1)


def test_cache_keys_differ_from_the_inner_detector(truth):
    weak = WeakenedDetector(truth, miss=0.5, seed=0)
    cached = CachedDetector(weak)
    first = cached.detect(refs(10))
    assert cached.calls == 10
    assert [r.detections for r in cached.detect(refs(10))] == [r.detections for r in first]
    assert cached.calls == 10
