"""Open-vocabulary detection with OWLv2 (or OWL-ViT) from transformers: nouns outside a closed set.

The detector looks for what it is asked: ``detect(images, queries)`` takes one list of labels per
image (the verifier passes the labels an answer claims). Each label is scored on its own (a
sigmoid per label and box, then non-maximum suppression per label), so what is found for "dog"
never depends on which other labels were asked with it; that is what lets
:class:`~halluguard.detectors.base.CachedDetector` cache results per (image, label).

>>> detector = OpenVocabDetector("google/owlv2-base-patch16-ensemble")   # doctest: +SKIP
>>> kitchen = ImageRef(Path("kitchen.jpg"))                                # doctest: +SKIP
>>> found = detector.detect([kitchen], queries=[["kettle", "toaster"]])     # doctest: +SKIP
>>> [(d.label, round(d.score, 2)) for d in found[0].detections]          # doctest: +SKIP
[('kettle', 0.41)]

- ``model``: a hub id or a local folder (``save_pretrained`` output), or a model object with
  ``processor``. A hub id downloads only when you name it and the hub is reachable; otherwise the
  error says how to pass a local folder.
- ``threshold`` (0.1, the value of transformers' OWLv2 examples): boxes scoring below it are not
  reported. ``nms_iou`` (0.3): overlap above which a weaker box of the same label is dropped
  (``None``: keep all). ``prompt``: how a label becomes a text query (``"a photo of a {}"``).
- Boxes are in pixels of the original image. OWLv2 pads images to a square at the bottom/right
  before resizing, so its relative boxes are scaled by the longer side; OWL-ViT resizes without
  padding, so its boxes are scaled by width and height.
- ``vocabulary`` is ``None`` (open); each result's ``Detections.vocabulary`` is the set of labels
  that were looked for in that image, so a label nobody asked about is never contradicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from halluguard.detectors.base import DetectorError, Queries, normalize_queries
from halluguard.images import ImageRef
from halluguard.records import Detection, Detections

DEFAULT_MODEL = "google/owlv2-base-patch16-ensemble"
SUPPORTED_TYPES = ("owlv2", "owlvit")


def nms(boxes: Any, scores: Any, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first (numpy arrays in, list out).

    >>> import numpy as np
    >>> boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], float)
    >>> nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5)
    [0, 2]
    """
    import numpy as np

    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        order = rest[overlap <= iou]
    return keep


class OpenVocabDetector:
    """OWLv2 / OWL-ViT as a :class:`~halluguard.detectors.base.Detector` with per-image text queries."""

    vocabulary = None

    def __init__(
        self,
        model: str | Path | Any = DEFAULT_MODEL,
        processor: Any = None,
        *,
        threshold: float = 0.1,
        nms_iou: float | None = 0.3,
        prompt: str = "a photo of a {}",
        device: str | None = None,
        half: bool | None = None,
        batch_size: int = 4,
        default_queries: Sequence[str] | None = None,
    ):
        if "{}" not in prompt:
            raise ValueError(f"prompt must contain '{{}}' where the label goes, got {prompt!r}")
        try:
            import torch
        except ImportError as exc:
            raise DetectorError(
                "the open-vocabulary detector needs torch and transformers: "
                f"pip install 'halluguard-vlm[decoders]' ({exc})"
            ) from exc
        self._torch = torch
        self.threshold, self.nms_iou, self.prompt = float(threshold), nms_iou, prompt
        self.batch_size = max(1, int(batch_size))
        self.default_queries = list(default_queries) if default_queries else None
        if isinstance(model, (str, Path)):
            self.name = str(model)
            self.model, self.processor = self._load(self.name, processor)
        else:
            if processor is None:
                raise ValueError("pass the processor along with a model object")
            self.name = type(model).__name__
            self.model, self.processor = model, processor
        self.model_type = getattr(self.model.config, "model_type", "owlv2")
        if self.model_type not in SUPPORTED_TYPES:
            raise DetectorError(
                f"open-vocabulary model {self.name!r} is a {self.model_type!r} model; "
                f"supported: {', '.join(SUPPORTED_TYPES)} (OWLv2, OWL-ViT)"
            )
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.half = self.device.type == "cuda" if half is None else bool(half)
        self.model.to(self.device, dtype=torch.float16 if self.half else None)
        self.model.eval()

    def __repr__(self) -> str:
        return f"OpenVocabDetector({self.name!r}, threshold={self.threshold}, device={str(self.device)!r})"

    @staticmethod
    def _load(name: str, processor: Any = None) -> tuple[Any, Any]:
        """The model at ``name`` and its processor (``processor`` when given: not loaded again)."""
        try:
            from transformers import AutoConfig, AutoProcessor
        except ImportError as exc:
            raise DetectorError(
                "the open-vocabulary detector needs transformers: "
                f"pip install 'halluguard-vlm[decoders]' ({exc})"
            ) from exc
        local = Path(name).expanduser()
        source = str(local) if local.exists() else name
        if not local.exists() and (local.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1):
            raise DetectorError(f"open-vocabulary model folder not found: {name}")
        try:
            config = AutoConfig.from_pretrained(source)
        except Exception as exc:  # offline hub, unknown id, unreadable folder
            raise DetectorError(
                f"could not load open-vocabulary model {name!r} ({type(exc).__name__}: {exc}). "
                "It is neither a local folder nor reachable on the hub (HF_HUB_OFFLINE set, or no network). "
                "Pass a local folder saved with save_pretrained, e.g. --detector owlv2:/path/to/owlv2, "
                "or run once online to fill the cache."
            ) from exc
        if config.model_type == "owlv2":
            from transformers import Owlv2ForObjectDetection as Model
        elif config.model_type == "owlvit":
            from transformers import OwlViTForObjectDetection as Model
        else:
            raise DetectorError(
                f"open-vocabulary model {name!r} is a {config.model_type!r} model; "
                f"supported: {', '.join(SUPPORTED_TYPES)} (OWLv2, OWL-ViT)"
            )
        try:
            model = Model.from_pretrained(source)
            if processor is None:
                processor = AutoProcessor.from_pretrained(source)
        except Exception as exc:
            raise DetectorError(
                f"could not load open-vocabulary model {name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return model, processor

    # -- detection ---------------------------------------------------------------------------

    def detect(self, images: Sequence[ImageRef], queries: Queries = None) -> list[Detections]:
        """For each image, boxes of the labels asked for it (``queries``: one list per image, or one
        list for all; default: ``default_queries``). Raises ``RecordError`` for a bad image."""
        images = list(images)
        per_image = normalize_queries(images, queries if queries is not None else self.default_queries)
        if per_image is None:
            raise ValueError(
                "an open-vocabulary detector needs queries: detect(images, queries=[[label, ...], ...]) "
                "or default_queries=[...]"
            )
        out: list[Detections | None] = [None] * len(images)
        todo = [i for i, labels in enumerate(per_image) if labels]
        for i, labels in enumerate(per_image):
            if not labels:
                out[i] = Detections([], None, frozenset())
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            pils = [images[i].pil() for i in chunk]
            found = self._run(pils, [per_image[i] for i in chunk])
            for i, detections in zip(chunk, found):
                out[i] = detections
        return out  # type: ignore[return-value]

    def _run(self, pils: list[Any], labels: list[list[str]]) -> list[Detections]:
        import numpy as np

        torch = self._torch
        texts = [[self.prompt.format(label) for label in per_image] for per_image in labels]
        inputs = self.processor(text=texts, images=pils, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if self.half and "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].half()
        with torch.inference_mode():
            outputs = self.model(**inputs)
        logits = outputs.logits.float().cpu().numpy()  # (batch, patches, max queries)
        boxes = outputs.pred_boxes.float().cpu().numpy()  # (batch, patches, 4) cx, cy, w, h in [0, 1]
        results = []
        for b, (pil, asked) in enumerate(zip(pils, labels)):
            width, height = pil.size
            if self.model_type == "owlv2":
                scale = np.array([max(width, height)] * 4, dtype=np.float64)
            else:
                scale = np.array([width, height, width, height], dtype=np.float64)
            cx, cy, w, h = (boxes[b, :, k].astype(np.float64) for k in range(4))
            xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * scale
            xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
            xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
            detections: list[Detection] = []
            for q, label in enumerate(asked):
                scores = 1.0 / (1.0 + np.exp(-logits[b, :, q].astype(np.float64)))
                index = np.nonzero(scores >= self.threshold)[0]
                if index.size == 0:
                    continue
                keep = (
                    range(index.size)
                    if self.nms_iou is None
                    else nms(xyxy[index], scores[index], self.nms_iou)
                )
                for k in keep:
                    i = index[k]
                    detections.append(Detection(label, float(scores[i]), tuple(float(v) for v in xyxy[i])))  # type: ignore[arg-type]
            detections.sort(key=lambda d: -d.score)
            results.append(Detections(detections, (width, height), frozenset(asked)))
        return results


__all__ = ["DEFAULT_MODEL", "OpenVocabDetector", "nms"]
