"""Helpers for the detector tests: images drawn on the fly and small fake detectors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from halluguard.images import ImageRef
from halluguard.records import Detection, Detections, RecordError


def draw(path: Path, colour=(200, 30, 30), size=(64, 48)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


class CountingDetector:
    """Closed vocabulary: one 'dog' box per image whose width is the image's red value (so results
    depend on the pixels); records every batch it is asked for."""

    vocabulary = frozenset({"dog", "cat"})

    def __init__(self):
        self.batches: list[list[str]] = []

    def detect(self, images: Sequence[ImageRef]) -> list[Detections]:
        self.batches.append([str(image.path.name if image.path else image.key) for image in images])
        out = []
        for image in images:
            pil = image.pil()
            red = pil.getpixel((0, 0))[0]
            out.append(
                Detections([Detection("dog", 0.9, (0.0, 0.0, float(red), 10.0))], pil.size, self.vocabulary)
            )
        return out


class OpenFake:
    """Open vocabulary: finds every label it is asked for whose name starts with the letter in the
    image key; records what it was asked."""

    vocabulary = None

    def __init__(self):
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def cache_key(self, image: ImageRef) -> str:
        return str(image.key)

    def detect(self, images, queries=None):
        out = []
        for image, labels in zip(images, queries):
            self.asked.append((image.key, tuple(labels)))
            if image.key == "bad":
                raise RecordError("bad image", "image")
            found = [
                Detection(label, 0.8, (1.0, 1.0, 5.0, 5.0)) for label in labels if label[0] == image.key[0]
            ]
            out.append(Detections(found, (10, 10), frozenset(labels)))
        return out
