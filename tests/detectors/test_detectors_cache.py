"""CachedDetector: each unique image (by content) detected once; bad images isolated; open vocabulary
cached per label."""

from __future__ import annotations

import shutil

import pytest
from detector_fakes import CountingDetector, OpenFake, draw

from halluguard.detectors import CachedDetector, NoDetector
from halluguard.detectors.base import normalize_queries
from halluguard.images import ImageRef
from halluguard.records import RecordError


def test_each_unique_image_is_detected_once_by_content(tmp_path, counting):
    a = draw(tmp_path / "a.png", (100, 0, 0))
    b = draw(tmp_path / "b.png", (50, 0, 0))
    a_copy = tmp_path / "copy-of-a.png"
    shutil.copy(a, a_copy)
    cached = CachedDetector(counting)
    refs = [ImageRef(a), ImageRef(b), ImageRef(a_copy), ImageRef(a), ImageRef(b)]
    results = cached.detect(refs)
    assert cached.calls == 2
    assert sum(len(batch) for batch in counting.batches) == 2
    assert len(counting.batches) == 1  # the misses went as one batch
    widths = [r.detections[0].box[2] for r in results]
    assert widths == [100.0, 50.0, 100.0, 100.0, 50.0]
    # asking again costs nothing
    again = cached.detect([ImageRef(a_copy), ImageRef(b)])
    assert cached.calls == 2 and [r.detections[0].box[2] for r in again] == [100.0, 50.0]


def test_cache_is_bounded(tmp_path, counting):
    cached = CachedDetector(counting, max_entries=2)
    paths = [draw(tmp_path / f"{i}.png", (i * 10, 0, 0)) for i in range(3)]
    cached.detect([ImageRef(p) for p in paths])
    assert cached.calls == 3
    cached.detect([ImageRef(paths[0])])  # evicted (oldest)
    assert cached.calls == 4
    cached.detect([ImageRef(paths[2])])  # still there
    assert cached.calls == 4


def test_a_bad_image_fails_alone(tmp_path, counting):
    good = draw(tmp_path / "good.png", (30, 0, 0))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    cached = CachedDetector(counting)
    results = cached.detect_each([ImageRef(good), ImageRef(corrupt), ImageRef(missing)])
    assert results[0].detections[0].box[2] == 30.0
    assert isinstance(results[1], RecordError) and "corrupt" in results[1].reason
    assert isinstance(results[2], RecordError) and "not found" in results[2].reason
    with pytest.raises(RecordError, match="corrupt"):
        cached.detect([ImageRef(good), ImageRef(corrupt)])
    # the good image is cached, the corrupt one remembered: no new work
    calls = cached.calls
    cached.detect_each([ImageRef(good), ImageRef(corrupt)])
    assert cached.calls == calls


def test_open_vocabulary_is_cached_per_label():
    fake = OpenFake()
    cached = CachedDetector(fake)
    d, c = ImageRef(None, "dog-pic"), ImageRef(None, "cat-pic")
    first = cached.detect([d, c], queries=[["dog", "cat"], ["cat"]])
    assert [x.label for x in first[0].detections] == ["dog"]
    assert [x.label for x in first[1].detections] == ["cat"]
    assert first[0].vocabulary == frozenset({"dog", "cat"})
    assert first[1].vocabulary == frozenset({"cat"})  # 'dog' was not looked for there
    second = cached.detect([d, c], queries=[["dog", "donkey"], ["dog", "cat"]])
    assert fake.asked[-2:] == [("dog-pic", ("donkey",)), ("cat-pic", ("dog",))]
    assert sorted(x.label for x in second[0].detections) == ["dog", "donkey"]
    assert [x.label for x in second[1].detections] == ["cat"]
    assert second[1].vocabulary == frozenset({"dog", "cat"})
    calls = cached.calls
    cached.detect([d], queries=["dog"])
    assert cached.calls == calls


def test_open_vocabulary_bad_image_and_empty_queries():
    cached = CachedDetector(OpenFake())
    results = cached.detect_each([ImageRef(None, "bad"), ImageRef(None, "dog")], queries=[["dog"], ["dog"]])
    assert isinstance(results[0], RecordError)
    assert [x.label for x in results[1].detections] == ["dog"]
    empty = cached.detect([ImageRef(None, "zebra")], queries=[[]])[0]
    assert empty.detections == [] and empty.vocabulary == frozenset()


def test_normalize_queries_shapes():
    assert normalize_queries([1, 2], None) is None
    assert normalize_queries([1, 2], ["a", " b ", "a"]) == [["a", "b"], ["a", "b"]]
    with pytest.raises(ValueError, match="one list per image"):
        normalize_queries([1, 2], [["a"]])
    with pytest.raises(TypeError):
        normalize_queries([1, 2], [["a"], "b"])


def test_no_detector_knows_nothing(tmp_path):
    result = CachedDetector(NoDetector()).detect([ImageRef(draw(tmp_path / "x.png"))])[0]
    assert result.detections == [] and result.vocabulary == frozenset() and not result.knows("dog")


def test_counting_detector_sees_pixels(tmp_path):
    """Guards the fake above: the width it reports comes from the image (so the cache test can fail)."""
    det = CountingDetector()
    out = det.detect([ImageRef(draw(tmp_path / "p.png", (77, 0, 0)))])
    assert out[0].detections[0].box[2] == 77.0
