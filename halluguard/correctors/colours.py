"""Colour names from pixels: a fixed set of eleven colours read from an HSV histogram.

Every pixel of a region gets one of :data:`COLOURS` by fixed rules on hue, saturation and value
(the boundaries below); a region's colours are the fractions of its pixels. The rules are the usual
HSV reading of English colour words: dark pixels are black, unsaturated ones white or gray by
brightness, the rest split by hue, with brown as dark or dull orange, pink as light red or
bright magenta and purple as violet or dark magenta.

=========  =====================================================================
black      value < 0.25
white      saturation < 0.2 and value > 0.85
gray       saturation < 0.2, otherwise
red        hue < 12 or >= 340 (dark and dull reds: brown; light and dull: pink)
orange     hue 12-42 (value < 0.65 or saturation < 0.45 below 0.9 value: brown)
yellow     hue 42-70
green      hue 70-165
blue       hue 165-255
purple     hue 255-290, or 290-340 with value < 0.6
pink       hue 290-340 with value >= 0.6; light dull red
=========  =====================================================================

>>> colour_of_rgb((200, 30, 30)), colour_of_rgb((139, 69, 19)), colour_of_rgb((128, 128, 128))
('red', 'brown', 'gray')
>>> from PIL import Image
>>> fractions = colour_fractions(Image.new("RGB", (40, 20), (20, 60, 200)), (0, 0, 40, 20))
>>> max(fractions, key=fractions.get)
'blue'
"""

from __future__ import annotations

from typing import Any

COLOURS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "gray",
)

#: words for the same colours
SYNONYMS = {
    "grey": "gray",
    "silver": "gray",
    "silvery": "gray",
    "charcoal": "gray",
    "crimson": "red",
    "scarlet": "red",
    "maroon": "red",
    "burgundy": "red",
    "golden": "yellow",
    "gold": "yellow",
    "blond": "yellow",
    "blonde": "yellow",
    "navy": "blue",
    "turquoise": "blue",
    "cyan": "blue",
    "teal": "blue",
    "azure": "blue",
    "violet": "purple",
    "lavender": "purple",
    "magenta": "pink",
    "tan": "brown",
    "beige": "brown",
    "chocolate": "brown",
    "bronze": "brown",
    "ivory": "white",
    "cream": "white",
    "olive": "green",
    "lime": "green",
}

#: words that shade a colour word before it ("dark blue", "navy-blue"): part of the colour claim's
#: words
COLOUR_SHADES = frozenset({"dark", "light", "bright", "pale", "deep", "vivid", "pastel", "navy"})

#: colours easily confused with each other under real light: one never contradicts the other
NEIGHBOURS: dict[str, frozenset[str]] = {
    "red": frozenset({"orange", "pink", "brown"}),
    "orange": frozenset({"red", "yellow", "brown"}),
    "yellow": frozenset({"orange", "brown", "green"}),
    "green": frozenset({"yellow", "blue"}),
    "blue": frozenset({"purple", "green", "gray"}),
    "purple": frozenset({"blue", "pink"}),
    "pink": frozenset({"red", "purple", "white"}),
    "brown": frozenset({"orange", "red", "black", "yellow"}),
    "black": frozenset({"gray", "brown"}),
    "white": frozenset({"gray"}),
    "gray": frozenset({"white", "black", "blue"}),
}

#: largest side of the region after downsampling (enough for a histogram, cheap on big boxes)
SAMPLE_SIDE = 48
#: the share of a box's width and height, around its centre, that is read (less background)
INNER = 0.7


def canonical_colour(word: str | None) -> str | None:
    """The colour in :data:`COLOURS` that ``word`` names, or ``None`` (not a colour).

    >>> canonical_colour("Grey"), canonical_colour("crimson"), canonical_colour("wooden")
    ('gray', 'red', None)
    """
    if not word:
        return None
    text = word.strip().lower()
    if text in COLOURS:
        return text
    return SYNONYMS.get(text)


def classify_hsv(h: Any, s: Any, v: Any) -> Any:
    """Colour index (into :data:`COLOURS`) per pixel; ``h`` in degrees, ``s``, ``v`` in [0, 1] (numpy)."""
    import numpy as np

    idx = {name: i for i, name in enumerate(COLOURS)}
    out = np.full(h.shape, idx["gray"], dtype=np.int8)
    chroma = (v >= 0.25) & (s >= 0.2)
    red = chroma & ((h < 12) | (h >= 340))
    orange = chroma & (h >= 12) & (h < 42)
    yellow = chroma & (h >= 42) & (h < 70)
    green = chroma & (h >= 70) & (h < 165)
    blue = chroma & (h >= 165) & (h < 255)
    violet = chroma & (h >= 255) & (h < 290)
    magenta = chroma & (h >= 290) & (h < 340)
    out[red] = idx["red"]
    out[red & (s < 0.5) & (v > 0.7)] = idx["pink"]
    out[red & (v < 0.45) & (s < 0.75)] = idx["brown"]
    out[orange] = idx["orange"]
    out[orange & ((v < 0.65) | ((s < 0.45) & (v < 0.9)))] = idx["brown"]
    out[yellow] = idx["yellow"]
    out[green] = idx["green"]
    out[blue] = idx["blue"]
    out[violet] = idx["purple"]
    out[magenta] = idx["pink"]
    out[magenta & (v < 0.6)] = idx["purple"]
    grey = (v >= 0.25) & (s < 0.2)
    out[grey & (v > 0.85)] = idx["white"]
    out[v < 0.25] = idx["black"]
    return out


def colour_of_rgb(rgb: tuple[int, int, int]) -> str:
    """The colour name of one RGB triple (0-255)."""
    import colorsys

    import numpy as np

    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    return COLOURS[int(classify_hsv(np.array([h * 360.0]), np.array([s]), np.array([v]))[0])]


def colour_fractions(
    image: Any, box: tuple[float, float, float, float], inner: float = INNER
) -> dict[str, float]:
    """Share of each colour among the pixels of the central ``inner`` part of ``box`` (a PIL image).

    Returns fractions summing to 1 (an empty dict when the box has no pixels).
    """
    import numpy as np

    width, height = image.size
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * inner, (y2 - y1) * inner
    left, top = max(0, int(round(cx - w / 2))), max(0, int(round(cy - h / 2)))
    right, bottom = min(width, int(round(cx + w / 2))), min(height, int(round(cy + h / 2)))
    if right - left < 1 or bottom - top < 1:
        return {}
    crop = image.crop((left, top, right, bottom))
    if max(crop.size) > SAMPLE_SIDE:
        crop.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), resample=0)  # nearest: no blended colours
    hsv = np.asarray(crop.convert("RGB").convert("HSV"), dtype=np.float32) / 255.0
    labels = classify_hsv(hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2])
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=len(COLOURS))
    total = counts.sum()
    return {name: float(counts[i]) / total for i, name in enumerate(COLOURS) if counts[i]}


def dominant(fractions: dict[str, float]) -> str | None:
    """The colour with the largest share (``None`` for an empty histogram)."""
    return max(fractions, key=lambda name: fractions[name]) if fractions else None


__all__ = [
    "COLOURS",
    "COLOUR_SHADES",
    "NEIGHBOURS",
    "SYNONYMS",
    "canonical_colour",
    "classify_hsv",
    "colour_fractions",
    "colour_of_rgb",
    "dominant",
]
