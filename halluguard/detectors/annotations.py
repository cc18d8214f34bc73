"""Ground-truth annotations as a detector: the oracle for evaluation and for cleaning labelled data.

Two file formats (JSON):

- **COCO instances** (``instances_val2014.json``): ``images``, ``annotations`` (``bbox`` as
  ``[x, y, w, h]``), ``categories``. Category names are used as labels (COCO's are already the
  YOLO names: ``"dining table"``, ``"cell phone"``). Images are found by id and by file name.
- **A mapping** ``{image or image_id: [label | {"label": ..., "box": [x1, y1, x2, y2]}, ...]}``,
  e.g. CHAIR's ground truth ``{"757": ["elephant"], ...}``. Plain labels carry no geometry: colours
  and relations stay unverifiable. Whether entries are instances (``["person", "person"]`` = two
  people, counts can be checked) or a set of labels (each listed once: presence only) is read from
  the file (``counts="auto"``: instances as soon as one image lists a label twice or has boxes) or
  forced with ``counts="instances"`` / ``counts="presence"``.

An image is looked up by :attr:`ImageRef.key` (the record's ``image_id`` or file name), then by the
path's file name, its stem, and the number in a COCO file name (``COCO_val2014_000000000757.jpg``
<-> ``757``). An image the file does not list is a ``RecordError`` naming the key.

The vocabulary is every label in the file, or the ``vocabulary`` you give (``"coco"`` = the 80
COCO classes): an annotation file that simply has no giraffe anywhere should not contradict a
giraffe unless you say it is exhaustive for that class.

>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "gt.json"
>>> _ = path.write_text(json.dumps({"757": ["elephant", "elephant"], "1270": ["person"]}))
>>> gt = AnnotationDetector(path)
>>> [d.label for d in gt.detect([ImageRef(None, "COCO_val2014_000000000757.jpg")])[0].detections]
['elephant', 'elephant']
>>> sorted(gt.vocabulary)
['elephant', 'person']
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from halluguard.detectors.base import AnnotatedDetections, DetectorError, Queries
from halluguard.images import ImageRef
from halluguard.records import Detection, Detections, RecordError

#: other datasets' names for COCO/YOLO classes (Pascal VOC and common spellings)
LABEL_ALIASES = {
    "aeroplane": "airplane",
    "motorbike": "motorcycle",
    "sofa": "couch",
    "tvmonitor": "tv",
    "tv monitor": "tv",
    "television": "tv",
    "diningtable": "dining table",
    "pottedplant": "potted plant",
    "mobile phone": "cell phone",
    "cellphone": "cell phone",
    "hair dryer": "hair drier",
    "hydrant": "fire hydrant",
}

_NO_BOX = (0.0, 0.0, 0.0, 0.0)
_DIGITS = re.compile(r"(\d+)$")


def normalize_label(label: str) -> str:
    """Lower-case, single spaces, ``_``/``-`` as spaces, and common aliases mapped to COCO names.

    >>> normalize_label("Dining_Table"), normalize_label("tvmonitor"), normalize_label("teddy bear")
    ('dining table', 'tv', 'teddy bear')
    """
    text = " ".join(str(label).replace("_", " ").strip().lower().split())
    return LABEL_ALIASES.get(text, text)


def coco_classes() -> tuple[str, ...]:
    """The 80 COCO class names (as YOLO names them)."""
    from halluguard.metrics.coco_vocabulary import COCO_CLASSES

    return tuple(COCO_CLASSES)


def key_candidates(image: ImageRef) -> list[str]:
    """The names under which an image may be listed, most specific first.

    >>> key_candidates(ImageRef(None, "COCO_val2014_000000000757.jpg"))
    ['COCO_val2014_000000000757.jpg', 'COCO_val2014_000000000757', '757']
    >>> key_candidates(ImageRef(None, "757"))[:3]
    ['757', 'COCO_val2014_000000000757.jpg', 'COCO_train2014_000000000757.jpg']
    """
    raw: list[str] = []
    for key in (image.key, image.path.name if image.path is not None else None):
        if key is None:
            continue
        key = str(key).strip()
        name = Path(key).name
        stem = Path(name).stem
        raw += [key, name, stem]
        match = _DIGITS.search(stem)
        if match:
            number = str(int(match.group(1)))
            raw.append(number)
            if stem == match.group(1) or key.isdigit():
                raw += [
                    f"COCO_val2014_{int(number):012d}.jpg",
                    f"COCO_train2014_{int(number):012d}.jpg",
                    f"{int(number):012d}.jpg",
                ]
    return list(dict.fromkeys(raw))


class AnnotationDetector:
    """Annotations (COCO instances JSON or ``{image: [labels]}``) as a detector."""

    def __init__(
        self,
        path: str | Path,
        *,
        vocabulary: Iterable[str] | str | None = None,
        counts: Literal["auto", "instances", "presence"] = "auto",
    ):
        self.path = Path(path).expanduser()
        if counts not in ("auto", "instances", "presence"):
            raise ValueError(f"counts must be 'auto', 'instances' or 'presence', got {counts!r}")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DetectorError(f"annotations file not found: {self.path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DetectorError(f"annotations file {self.path} is not readable JSON: {exc}") from None
        # key -> (detections, image_size, has_boxes)
        self._images: dict[str, tuple[list[Detection], tuple[int, int] | None, bool]] = {}
        if isinstance(data, dict) and "annotations" in data and "images" in data:
            self.format = "coco"
            self._load_coco(data)
        elif isinstance(data, dict):
            self.format = "mapping"
            self._load_mapping(data)
        else:
            raise DetectorError(
                f"annotations file {self.path}: expected COCO instances JSON (images, annotations, "
                "categories) "
                f"or an object {{image_id: [label, ...]}}, got a JSON {type(data).__name__}"
            )
        if counts == "auto":
            instances = self.format == "coco" or any(
                boxed or max(Counter(d.label for d in dets).values(), default=1) > 1
                for dets, _, boxed in self._images.values()
            )
        else:
            instances = counts == "instances"
        self.instances = instances
        labels = frozenset(d.label for dets, _, _ in self._images.values() for d in dets)
        self.labels = labels
        if vocabulary is None:
            self.vocabulary: frozenset[str] = labels
        elif isinstance(vocabulary, str):
            if vocabulary.lower() not in ("coco", "coco80"):
                raise ValueError(f"vocabulary: a list of labels or 'coco', got {vocabulary!r}")
            self.vocabulary = frozenset(coco_classes()) | labels
        else:
            self.vocabulary = frozenset(normalize_label(v) for v in vocabulary)

    def __repr__(self) -> str:
        return (
            f"AnnotationDetector({str(self.path)!r}, images={len(self._images)}, labels={len(self.labels)})"
        )

    def __len__(self) -> int:
        return len({id(v) for v in self._images.values()})

    # -- loading -----------------------------------------------------------------------------

    def _add(self, keys: Iterable[Any], entry: tuple[list[Detection], tuple[int, int] | None, bool]) -> None:
        for key in keys:
            if key is not None and str(key) not in self._images:
                self._images[str(key)] = entry

    def _load_coco(self, data: dict[str, Any]) -> None:
        names = {c["id"]: normalize_label(c["name"]) for c in data.get("categories", [])}
        per_image: dict[Any, list[Detection]] = {img["id"]: [] for img in data["images"]}
        for ann in data["annotations"]:
            image_id = ann.get("image_id")
            if image_id not in per_image:
                continue
            label = names.get(ann.get("category_id"))
            if label is None:
                raise DetectorError(
                    f"annotations file {self.path}: category_id {ann.get('category_id')} "
                    "is not in 'categories'"
                )
            x, y, w, h = (float(v) for v in ann.get("bbox", (0, 0, 0, 0)))
            score = float(ann.get("score", 1.0))
            per_image[image_id].append(Detection(label, score, (x, y, x + w, y + h)))
        for img in data["images"]:
            size = (int(img["width"]), int(img["height"])) if "width" in img and "height" in img else None
            entry = (per_image[img["id"]], size, True)
            self._add((img["id"], img.get("file_name")), entry)

    def _load_mapping(self, data: dict[str, Any]) -> None:
        for key, items in data.items():
            if (
                isinstance(items, dict) and "objects" in items
            ):  # {"image": {"objects": [...], "size": [w, h]}}
                size = tuple(items["size"]) if items.get("size") else None
                items = items["objects"]
            else:
                size = None
            if not isinstance(items, list):
                raise DetectorError(
                    f"annotations file {self.path}: image {key!r}: expected a list of labels "
                    f"or {{label, box}} objects, got {type(items).__name__}"
                )
            detections: list[Detection] = []
            boxed = bool(items)
            for item in items:
                if isinstance(item, str):
                    detections.append(Detection(normalize_label(item), 1.0, _NO_BOX))
                    boxed = False
                elif isinstance(item, dict) and ("label" in item or "name" in item):
                    label = normalize_label(item.get("label", item.get("name")))
                    box = item.get("box", item.get("bbox_xyxy"))
                    if box is None:
                        boxed = False
                        box = _NO_BOX
                    elif len(box) != 4:
                        raise DetectorError(
                            f"annotations file {self.path}: image {key!r}: box must be "
                            f"[x1, y1, x2, y2], got {box!r}"
                        )
                    detections.append(
                        Detection(label, float(item.get("score", 1.0)), tuple(float(v) for v in box))
                    )  # type: ignore[arg-type]
                else:
                    raise DetectorError(
                        f"annotations file {self.path}: image {key!r}: cannot read {item!r} "
                        '(expected a label or {"label": ..., "box": [x1, y1, x2, y2]})'
                    )
            self._add((key,), (detections, size, boxed))  # type: ignore[arg-type]

    # -- detection ---------------------------------------------------------------------------

    def lookup(self, image: ImageRef) -> tuple[str, tuple[list[Detection], tuple[int, int] | None, bool]]:
        for candidate in key_candidates(image):
            if candidate in self._images:
                return candidate, self._images[candidate]
        shown = image.key if image.key is not None else (image.path.name if image.path else None)
        raise RecordError(
            f"image {shown!r} is not in the annotations {self.path.name} ({len(self)} images; looked up as "
            f"{key_candidates(image)[:4]}): give the record an image_id or file name the file lists",
            "image_id",
        )

    def cache_key(self, image: ImageRef) -> str:
        """Annotations answer by name, not by pixels."""
        return "annotations:" + self.lookup(image)[0]

    def detect(self, images: Sequence[ImageRef], queries: Queries = None) -> list[Detections]:
        out: list[Detections] = []
        for image in images:
            _, (detections, size, boxed) = self.lookup(image)
            out.append(
                AnnotatedDetections(
                    list(detections), size, self.vocabulary, has_boxes=boxed, instances=self.instances
                )
            )
        return out


__all__ = ["AnnotationDetector", "LABEL_ALIASES", "coco_classes", "key_candidates", "normalize_label"]
