"""A seeded, weaker copy of any detector: for measuring how a corrector copes with detector errors.

Each true object is missed with probability ``miss``; with probability ``add`` per image, one false
object (a label the detector knows but did not find there) is added. The draws depend only on the
image's key (its ``image_id`` or file name; its content hash when it has neither) and ``seed``,
so the same image is weakened the same way in every run, batch and order.

>>> from halluguard.detectors.base import NoDetector
>>> from halluguard.images import ImageRef
>>> weak = WeakenedDetector(NoDetector(), miss=0.5, add=0.0, seed=1)
>>> weak.detect([ImageRef(None, "1")])[0].detections
[]
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

from halluguard.detectors.base import Detector, Queries, has_boxes
from halluguard.images import ImageRef
from halluguard.records import Detection, Detections

_NO_BOX = (0.0, 0.0, 0.0, 0.0)


class WeakenedDetector:
    """Wrap ``detector``; drop each box with p=``miss``, add one false object per image with p=``add``."""

    def __init__(self, detector: Detector, miss: float = 0.2, add: float = 0.1, seed: int = 0):
        for name, value in (("miss", miss), ("add", add)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        self.detector = detector
        self.vocabulary = detector.vocabulary
        self.miss, self.add, self.seed = float(miss), float(add), int(seed)

    def __repr__(self) -> str:
        return f"WeakenedDetector({self.detector!r}, miss={self.miss}, add={self.add}, seed={self.seed})"

    @staticmethod
    def image_key(image: ImageRef) -> str:
        if image.key is not None:
            return str(image.key)
        if image.path is not None:
            return image.path.name
        return image.sha1

    def cache_key(self, image: ImageRef) -> Any:
        inner = getattr(self.detector, "cache_key", None)
        return ("weakened", inner(image) if inner else image.sha1, self.image_key(image))

    def detect(self, images: Sequence[ImageRef], queries: Queries = None) -> list[Detections]:
        images = list(images)
        if self.detector.vocabulary is None:
            results = self.detector.detect(images, queries=queries)
        else:
            results = self.detector.detect(images)
        return [self.weaken(image, result) for image, result in zip(images, results)]

    def weaken(self, image: ImageRef, result: Detections) -> Detections:
        """The weakened copy of one image's detections (deterministic in key and seed)."""
        rng = random.Random(f"halluguard-weakened|{self.seed}|{self.image_key(image)}")
        kept = [d for d in result.detections if rng.random() >= self.miss]
        if rng.random() < self.add:
            present = {d.label for d in result.detections}
            candidates = sorted(set(result.vocabulary or ()) - present)
            if candidates:
                label = rng.choice(candidates)
                score = round(rng.uniform(0.5, 0.95), 3)
                kept.append(Detection(label, score, self._random_box(rng, result)))
        return dataclasses.replace(result, detections=kept)

    @staticmethod
    def _random_box(rng: random.Random, result: Detections) -> tuple[float, float, float, float]:
        if not has_boxes(result) or result.image_size is None:
            return _NO_BOX
        width, height = result.image_size
        w = rng.uniform(0.1, 0.5) * width
        h = rng.uniform(0.1, 0.5) * height
        x = rng.uniform(0, width - w)
        y = rng.uniform(0, height - h)
        return (round(x, 1), round(y, 1), round(x + w, 1), round(y + h, 1))


__all__ = ["WeakenedDetector"]
