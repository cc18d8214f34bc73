"""The annotations backend: the real CHAIR ground truth of 500 COCO images, and COCO instances files."""

from __future__ import annotations

import json
import random

import pytest

from halluguard.correctors.verify import verify
from halluguard.detectors import AnnotatedDetections, CachedDetector, DetectorError, load_detector
from halluguard.detectors.annotations import AnnotationDetector, coco_classes, key_candidates, normalize_label
from halluguard.images import ImageRef
from halluguard.records import Claim, RecordError


@pytest.fixture(scope="module")
def truth(request):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco500" / "gt_objects.json"
    if not path.exists():
        pytest.skip("../shared/data/coco500 is not present")
    return path, json.loads(path.read_text())


def test_real_ground_truth_is_read_exactly(truth):
    path, raw = truth
    detector = load_detector(f"annotations:{path}")
    assert len(detector) == len(raw) == 500
    assert detector.vocabulary == frozenset(label for labels in raw.values() for label in labels)
    assert detector.vocabulary <= frozenset(coco_classes())
    keys = random.Random(0).sample(sorted(raw), 25)
    results = detector.detect([ImageRef(None, key) for key in keys])
    for key, result in zip(keys, results):
        assert sorted(d.label for d in result.detections) == sorted(raw[key])
        assert isinstance(result, AnnotatedDetections)
        assert not result.has_boxes and not result.instances  # CHAIR's truth is a set of labels per image


def test_real_ground_truth_verifies_presence_not_counts(truth):
    path, raw = truth
    detector = AnnotationDetector(path)
    key = next(k for k, labels in raw.items() if "person" in labels and "dog" not in labels)
    result = detector.detect([ImageRef(None, key)])[0]
    claims = [
        Claim("a man", 0, 5, "object", "person"),
        Claim("a dog", 0, 5, "object", "dog"),
        Claim("three people", 0, 12, "count", "person", count=3),
        Claim("two dogs", 0, 8, "count", "dog", count=2),
        Claim("a red shirt", 0, 11, "attribute", "person", attribute="red"),
        Claim("a man next to a dog", 0, 19, "relation", "person", relation="next to", target="dog"),
        Claim("a unicorn", 0, 9, "object", "unicorn"),
    ]
    verify(claims, result, None)
    assert [c.verdict for c in claims] == [
        "supported",
        "contradicted",
        "unverifiable",
        "contradicted",
        "unverifiable",
        "contradicted",
        "unverifiable",
    ]
    assert claims[3].evidence["count"] == 0
    assert claims[5].evidence["missing"] == "target"
    assert "boxes" not in claims[0].evidence  # no fake geometry in the evidence


def test_lookup_by_id_file_name_and_path(truth, tmp_path):
    path, raw = truth
    detector = AnnotationDetector(path)
    key = sorted(raw, key=int)[3]
    file_name = f"COCO_val2014_{int(key):012d}.jpg"
    image = tmp_path / file_name
    image.write_bytes(b"")
    expected = sorted(raw[key])
    for ref in (
        ImageRef(None, key),
        ImageRef(None, file_name),
        ImageRef(None, f"{int(key):012d}.jpg"),
        ImageRef(image, None),
        ImageRef(None, f"images/{file_name}"),
    ):
        assert sorted(d.label for d in detector.detect([ref])[0].detections) == expected, ref


def test_missing_image_names_the_key(truth):
    path, raw = truth
    missing = str(max(int(k) for k in raw) + 1)
    detector = AnnotationDetector(path)
    with pytest.raises(RecordError) as info:
        detector.detect([ImageRef(None, missing)])
    assert repr(missing) in info.value.reason and info.value.field == "image_id"
    cached = CachedDetector(detector)
    results = cached.detect_each([ImageRef(None, missing), ImageRef(None, sorted(raw)[0])])
    assert isinstance(results[0], RecordError) and not isinstance(results[1], RecordError)


def test_coco_vocabulary_option(truth):
    path, _ = truth
    detector = AnnotationDetector(path, vocabulary="coco")
    assert len(detector.vocabulary) == 80
    assert detector.vocabulary == frozenset(coco_classes())


def test_coco_instances_format(tmp_path):
    data = {
        "images": [
            {"id": 7, "file_name": "COCO_val2014_000000000007.jpg", "width": 640, "height": 480},
            {"id": 8, "file_name": "eight.jpg", "width": 100, "height": 100},
        ],
        "categories": [
            {"id": 1, "name": "person"},
            {"id": 67, "name": "dining table"},
            {"id": 18, "name": "dog"},
            {"id": 47, "name": "cup"},
        ],
        "annotations": [
            {"image_id": 7, "category_id": 1, "bbox": [10, 20, 30, 40]},
            {"image_id": 7, "category_id": 1, "bbox": [100, 20, 30, 40]},
            {"image_id": 7, "category_id": 67, "bbox": [0, 200, 640, 280]},
            {"image_id": 7, "category_id": 47, "bbox": [300, 180, 20, 30]},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    detector = load_detector(str(path))  # a .json path means annotations
    assert detector.format == "coco" and detector.vocabulary == frozenset({"person", "dining table", "cup"})
    seven, eight = detector.detect([ImageRef(None, "7"), ImageRef(None, "eight.jpg")])
    assert seven.image_size == (640, 480) and seven.has_boxes and seven.instances
    assert sorted(d.box for d in seven.of("person")) == [(10.0, 20.0, 40.0, 60.0), (100.0, 20.0, 130.0, 60.0)]
    assert eight.detections == []
    claims = [
        Claim("two people", 0, 10, "count", "person", count=2),
        Claim("a cup on the table", 0, 18, "relation", "cup", relation="on", target="dining table"),
        Claim("people above the table", 0, 22, "relation", "person", relation="above", target="dining table"),
        Claim("a table", 0, 7, "object", "dining table"),
    ]
    verify(claims, seven, None)
    assert [c.verdict for c in claims] == ["supported"] * 4
    verify(claims[3:], eight, None)
    assert claims[3].verdict == "contradicted"


def test_mapping_with_boxes_and_counts(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(
        json.dumps(
            {
                "a.jpg": [{"label": "Dog", "box": [0, 0, 10, 10]}, {"label": "dog", "box": [20, 0, 30, 10]}],
                "b.jpg": ["cat", {"label": "tvmonitor"}],
                "c.jpg": ["cat"],
            }
        )
    )
    detector = AnnotationDetector(path)
    assert detector.instances  # a.jpg has boxes: entries are instances
    a, b = detector.detect([ImageRef(None, "a.jpg"), ImageRef(None, "b.jpg")])
    assert a.has_boxes and [d.label for d in a.detections] == ["dog", "dog"]
    assert not b.has_boxes and sorted(d.label for d in b.detections) == ["cat", "tv"]
    claim = Claim("two dogs", 0, 8, "count", "dog", count=2)
    verify([claim], a, None)
    assert claim.verdict == "supported" and claim.evidence["count"] == 2
    presence = AnnotationDetector(path, counts="presence")
    verify([claim], presence.detect([ImageRef(None, "a.jpg")])[0], None)
    assert claim.verdict == "unverifiable"


def test_repeated_labels_mean_instances(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"1": ["person", "person", "person"], "2": ["dog"]}))
    detector = AnnotationDetector(path)
    assert detector.instances
    claim = Claim("two people", 0, 10, "count", "person", count=2)
    verify([claim], detector.detect([ImageRef(None, "1")])[0], None)
    assert claim.verdict == "contradicted" and claim.evidence["count"] == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "expected COCO instances JSON"),
        ("{not json", "not readable JSON"),
        ('{"1": "dog"}', "expected a list"),
        ('{"1": [{"label": "dog", "box": [1, 2]}]}', "box must be"),
        ('{"1": [3]}', "cannot read"),
    ],
)
def test_bad_files_are_clear(tmp_path, content, message):
    path = tmp_path / "gt.json"
    path.write_text(content)
    with pytest.raises(DetectorError, match=message):
        AnnotationDetector(path)


def test_missing_file(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        load_detector(f"annotations:{tmp_path / 'nope.json'}")


def test_label_normalisation_and_keys():
    assert normalize_label("  Potted_Plant ") == "potted plant"
    assert normalize_label("aeroplane") == "airplane"
    assert "42" in key_candidates(ImageRef(None, "COCO_train2014_000000000042.jpg"))
    assert "COCO_val2014_000000000042.jpg" in key_candidates(ImageRef(None, "42"))
