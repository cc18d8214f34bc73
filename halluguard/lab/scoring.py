"""Scoring lab captions: CHAIR over the lab's 10 kinds, and the prior-driven hallucination rate.

The lab's captions are template sentences, so its nouns are read exactly (singular and plural kind
words; a colour, "small" and a number or article before them). The rates follow CHAIR (Rohrbach et
al. 2018), with the lab's kinds in place of the 80 COCO classes:

- ``chair_s``: captions naming at least one kind absent from the image / captions;
- ``chair_i``: mentions of absent kinds / all kind mentions;
- ``recall``: kinds in the image that the caption names / kinds in the image;
- ``prior``: for each pair ``A -> B`` (:data:`~halluguard.lab.world.PAIRS`) and each image with A but
  without B, how often the caption names B: hallucination driven by the co-occurrence prior;
- ``control``: the same rate of naming B in images with neither A nor B (the baseline for ``prior``).

Each rate is a ratio of per-caption sums, so :func:`halluguard.metrics.statistics.bootstrap_ratios`
gives its 95 % interval by resampling captions. Rates are in percent.

>>> truth = {"kinds": ["moon"]}
>>> s = score(["there are a white moon and a small blue star."], [truth])
>>> s.rates()["chair_i"], s.rates()["recall"], s.rates()["prior"]
(50.0, 100.0, 100.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from halluguard.lab.world import COLOURS, KINDS, NUMBERS, PAIRS, PLURALS

RATES = ("chair_i", "chair_s", "recall", "prior", "control")
_SINGULAR = {k: k for k in KINDS} | {PLURALS[k]: k for k in KINDS}
_TOKEN = re.compile(r"[a-z]+|[^\sa-z]")


@dataclass(frozen=True)
class KindMention:
    """One object phrase: ``kind`` with the words before it (``count`` 1 for "a"/"an")."""

    kind: str
    count: int | None
    colour: str | None
    small: bool
    word: str


def mentions(caption: str) -> list[KindMention]:
    """The kind mentions of a caption, in order.

    >>> [(m.kind, m.count, m.colour, m.small) for m in mentions("there are two red circles and a small star.")]
    [('circle', 2, 'red', False), ('star', 1, None, True)]
    """
    out: list[KindMention] = []
    count: int | None = None
    colour: str | None = None
    small = False
    for token in _TOKEN.findall(caption.lower()):
        if token in _SINGULAR:
            out.append(KindMention(_SINGULAR[token], count, colour, small, token))
            count, colour, small = None, None, False
        elif token in ("a", "an", "one"):
            count = 1
        elif token in NUMBERS:
            count = NUMBERS.index(token)
        elif token in COLOURS:
            colour = token
        elif token == "small":
            small = True
        elif token in (",", ".", "and"):
            count, colour, small = None, None, False
    return out


@dataclass
class Scores:
    """Per-caption numerators and denominators of each rate (see :meth:`parts`)."""

    num: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in RATES})
    den: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in RATES})
    words: list[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.words)

    def parts(self) -> dict[str, tuple[list[float], list[float]]]:
        return {k: (self.num[k], self.den[k]) for k in RATES}

    def rates(self) -> dict[str, float]:
        """Each rate in percent (NaN when nothing to count)."""
        out = {}
        for k in RATES:
            d = sum(self.den[k])
            out[k] = 100.0 * sum(self.num[k]) / d if d else float("nan")
        return out

    def intervals(self, n_resamples: int = 1000, seed: int = 0) -> dict[str, tuple[float, float]]:
        """95 % percentile-bootstrap intervals (percent), resampling captions."""
        from halluguard.metrics.statistics import bootstrap_ratios

        ci = bootstrap_ratios(self.parts(), n_resamples=n_resamples, seed=seed)
        return {k: (100.0 * lo, 100.0 * hi) for k, (lo, hi) in ci.items()}

    def summary(self, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
        """Rates, their intervals (``KEY_ci``), ``n`` and ``avg_words``."""
        out: dict[str, Any] = dict(self.rates())
        if n_resamples:
            for k, ci in self.intervals(n_resamples, seed).items():
                out[k + "_ci"] = list(ci)
        out["n"] = self.n
        out["avg_words"] = sum(self.words) / self.n if self.n else float("nan")
        return out


def score(captions: Sequence[str], truths: Sequence[dict[str, Any]]) -> Scores:
    """Score captions against ground truths (``truth["kinds"]``: the kinds in each image)."""
    if len(captions) != len(truths):
        raise ValueError(f"score: {len(captions)} captions for {len(truths)} images")
    s = Scores()
    for text, truth in zip(captions, truths):
        gt = set(truth["kinds"])
        found = mentions(text)
        named = {m.kind for m in found}
        bad = sum(1 for m in found if m.kind not in gt)
        s.num["chair_i"].append(bad)
        s.den["chair_i"].append(len(found))
        s.num["chair_s"].append(float(bad > 0))
        s.den["chair_s"].append(1.0)
        s.num["recall"].append(len(named & gt))
        s.den["recall"].append(len(gt))
        prior = control = prior_hit = control_hit = 0
        for a, b in PAIRS:
            if b in gt:
                continue
            if a in gt:
                prior += 1
                prior_hit += b in named
            else:
                control += 1
                control_hit += b in named
        s.num["prior"].append(prior_hit)
        s.den["prior"].append(prior)
        s.num["control"].append(control_hit)
        s.den["control"].append(control)
        s.words.append(len(re.findall(r"[a-z]+", text.lower())))
    return s
