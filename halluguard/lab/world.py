"""The lab's visual world: seeded 64x64 scenes of coloured shapes, their captions and ground truth.

A scene holds 1-4 objects of 10 kinds in 7 colours on a noisy background; about a quarter are small
(7-10 px, captioned "small") and some are faint (blended into the background). Training scenes carry a
**co-occurrence prior**: each ``A -> B`` pair of :data:`PAIRS` (moon -> star, arrow -> diamond) has
``P(B | A)`` about 0.9 (0.86 measured), and a B that accompanies an A is often small or faint, so a captioner learns that
naming B after A pays even when B is hard to see. That is the language prior that makes real
vision-language models "see" a fork next to every knife. Test scenes come in two kinds:

- ``natural``: drawn like the training scenes (new seeds);
- ``prior_breaking``: an A without its B, where a prior-driven captioner names a B that is not there.

Everything is a pure function of ``(seed, split, index)``: scene ``i`` of a split does not depend on
how many scenes are drawn, and no global random state is used.

>>> scene = make_scene(seed=0, split="test", index=3, prior_break=True)
>>> caption(scene).startswith("there ")
True
>>> images, truth = render([scene])
>>> tuple(images.shape), len(truth[0]["objects"]) == len(scene.objects)
((1, 3, 64, 64), True)
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

SIZE = 64
KINDS: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "heart", "moon", "star", "arrow", "diamond")
PLURALS: dict[str, str] = {k: (k + "es" if k.endswith(("ss", "x", "ch", "sh")) else k + "s") for k in KINDS}
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange", "white")
RGB: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10), "green": (0.10, 0.72, 0.20), "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.88, 0.10), "purple": (0.62, 0.15, 0.82), "orange": (1.00, 0.55, 0.05),
    "white": (0.95, 0.95, 0.95),
}
#: the co-occurrence prior: (A, B) with P(B | A) = PRIOR in natural scenes
PAIRS: tuple[tuple[str, str], ...] = (("moon", "star"), ("arrow", "diamond"))
PRIOR = 0.9
NUMBERS = ("zero", "one", "two", "three", "four")
SMALL_MAX = 10  # px: objects this size or smaller are captioned "small"
SPLITS = ("train", "val", "test")

# kind -> maximal random rotation (radians); 2*pi = any orientation
_ROTATION = {"circle": 0.0, "ring": 0.0, "square": 0.25, "diamond": 0.25, "cross": 0.25, "triangle": 0.35,
             "heart": 0.35, "moon": 2 * math.pi, "star": 2 * math.pi, "arrow": 2 * math.pi}


@dataclass
class Obj:
    """One object: kind and colour, centre and size in pixels, rotation, opacity, flags."""

    kind: str
    colour: str
    cx: float
    cy: float
    size: float
    angle: float = 0.0
    alpha: float = 1.0
    faint: bool = False
    companion: bool = False  # added by the co-occurrence prior

    @property
    def small(self) -> bool:
        return self.size <= SMALL_MAX


@dataclass
class Scene:
    """One image's description: objects, background and the seed of its pixel noise."""

    objects: list[Obj]
    background: tuple[float, float, float]
    gradient: tuple[float, float]
    noise: float
    noise_seed: int
    name: str = ""
    prior_break: tuple[str, str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kinds(self) -> set[str]:
        return {o.kind for o in self.objects}


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of scene ``index`` of ``split``: independent of every other scene."""
    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])


def _sample_kinds(rng: np.random.Generator) -> tuple[list[str], list[bool]]:
    n = int(rng.choice([1, 2, 3, 4], p=[0.25, 0.3, 0.25, 0.2]))
    kinds: list[str] = []
    for j in range(n):
        if j and rng.random() < 0.2:
            kinds.append(kinds[-1])  # a repeated kind: "two red circles"
        else:
            kinds.append(KINDS[int(rng.integers(len(KINDS)))])
    return kinds, [False] * len(kinds)


def _apply_prior(rng: np.random.Generator, kinds: list[str], companion: list[bool],
                 prior_break: tuple[str, str] | None) -> None:
    """Make P(B | A) = PRIOR for each pair (and 0 for the broken pair, whose A is forced in).

    A full scene (4 objects) whose every slot is a pair's kind gets no B: measured P(B | A) is about
    0.86 rather than 0.9. (Kept as is: the shipped models were trained on exactly this world.)
    """
    if prior_break is not None:
        a, b = prior_break
        kinds[:] = [k for k in kinds if k != b] or [a]
        companion[:] = [False] * len(kinds)
        if a not in kinds:
            kinds[int(rng.integers(len(kinds)))] = a
    protected = {k for pair in PAIRS for k in pair}
    for a, b in PAIRS:
        if a not in kinds:
            continue
        want_b = (a, b) != prior_break and rng.random() < PRIOR
        if want_b and b not in kinds:
            if len(kinds) < 4:
                kinds.append(b)
                companion.append(True)
            else:
                free = [i for i, k in enumerate(kinds) if k not in protected]
                if free:
                    i = free[int(rng.integers(len(free)))]
                    kinds[i], companion[i] = b, True
        elif not want_b and b in kinds:
            keep = [i for i, k in enumerate(kinds) if k != b]
            kinds[:] = [kinds[i] for i in keep]
            companion[:] = [companion[i] for i in keep]


def _place(rng: np.random.Generator, sizes: list[float]) -> tuple[list[tuple[float, float]], list[float]]:
    """Centres for objects that do not touch (their circles keep 1 px apart); shrinks if crowded."""
    centres: list[tuple[float, float]] = []
    out_sizes: list[float] = []
    for size in sizes:
        for attempt in range(200):
            if attempt and attempt % 40 == 0:
                size = max(7.0, size * 0.85)
            half = size / 2 + 1
            cx, cy = rng.uniform(half, SIZE - half, size=2)
            if all(math.hypot(cx - x, cy - y) >= (size + s) / 2 * 1.08 + 1 for (x, y), s in zip(centres, out_sizes)):
                break
        centres.append((float(cx), float(cy)))
        out_sizes.append(float(size))
    return centres, out_sizes


def make_scene(seed: int, split: str, index: int, prior_break: bool | tuple[str, str] = False) -> Scene:
    """Scene ``index`` of ``split``; ``prior_break=True`` gives an A without its B (pair drawn at random).

    >>> make_scene(1, "test", 0, prior_break=("moon", "star")).kinds >= {"moon"}
    True
    >>> "star" in make_scene(1, "test", 0, prior_break=("moon", "star")).kinds
    False
    """
    rng = scene_rng(seed, split + (":pb" if prior_break else ""), index)
    pair: tuple[str, str] | None
    if prior_break is True:
        pair = PAIRS[int(rng.integers(len(PAIRS)))]
    else:
        pair = prior_break or None
    kinds, companion = _sample_kinds(rng)
    _apply_prior(rng, kinds, companion, pair)
    colours: list[str] = []
    sizes: list[float] = []
    faint: list[bool] = []
    for j, kind in enumerate(kinds):
        if j and kinds[j - 1] == kind and rng.random() < 0.6:
            colours.append(colours[-1])
        else:
            colours.append(COLOURS[int(rng.integers(len(COLOURS)))])
        p_small, p_faint = (0.6, 0.5) if companion[j] else (0.25, 0.12)
        sizes.append(float(rng.uniform(7, SMALL_MAX + 0.99) if rng.random() < p_small else rng.uniform(11, 22)))
        faint.append(bool(rng.random() < p_faint))
    centres, sizes = _place(rng, sizes)
    objects = []
    for j, kind in enumerate(kinds):
        limit = _ROTATION[kind]
        angle = float(rng.uniform(-limit, limit)) if limit < math.pi else float(rng.uniform(0, 2 * math.pi))
        alpha = float(rng.uniform(0.15, 0.35) if faint[j] else rng.uniform(0.85, 1.0))
        objects.append(Obj(kind, colours[j], centres[j][0], centres[j][1], sizes[j], angle, alpha, faint[j], companion[j]))
    tint = rng.uniform(-0.06, 0.06, size=3)
    level = rng.uniform(0.12, 0.45)
    background = tuple(float(np.clip(level + t, 0, 1)) for t in tint)
    gradient = tuple(float(g) for g in rng.uniform(-0.12, 0.12, size=2))
    noise = float(rng.uniform(0.025, 0.07))
    return Scene(objects, background, gradient, noise, int(rng.integers(2**31)),  # type: ignore[arg-type]
                 name=f"{split}{'-pb' if pair else ''}-{index:06d}", prior_break=pair)


def make_scenes(seed: int, split: str, n: int, prior_breaking_share: float = 0.0, start: int = 0) -> list[Scene]:
    """``n`` scenes; the first ``round(n * prior_breaking_share)`` are prior-breaking, the rest natural.

    >>> [s.prior_break is not None for s in make_scenes(0, "test", 4, prior_breaking_share=0.5)]
    [True, True, False, False]
    """
    n_break = int(round(n * prior_breaking_share))
    broken = [make_scene(seed, split, start + i, prior_break=True) for i in range(n_break)]
    return broken + [make_scene(seed, split, start + i) for i in range(n - n_break)]


# --------------------------------------------------------------------------- captions


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def groups(scene: Scene) -> list[tuple[str, str, bool, int]]:
    """``(kind, colour, small, count)`` per caption phrase, in caption order (kind, size, colour)."""
    counts: dict[tuple[str, str, bool], int] = {}
    for o in scene.objects:
        key = (o.kind, o.colour, o.small)
        counts[key] = counts.get(key, 0) + 1
    order = sorted(counts, key=lambda k: (KINDS.index(k[0]), k[2], COLOURS.index(k[1])))
    return [(k, c, s, counts[(k, c, s)]) for k, c, s in order]


def phrase(kind: str, colour: str, small: bool, count: int) -> str:
    """ "a small blue star", "two red circles".

    >>> phrase("circle", "orange", False, 1), phrase("cross", "red", True, 2)
    ('an orange circle', 'two small red crosses')
    """
    words = (["small"] if small else []) + [colour, kind if count == 1 else PLURALS[kind]]
    first = _article(words[0]) if count == 1 else NUMBERS[count]
    return " ".join([first] + words)


def caption(scene: Scene) -> str:
    """The reference caption: every object, grouped, in a fixed order.

    >>> s = Scene([Obj("circle", "red", 10, 10, 15), Obj("circle", "red", 40, 40, 15),
    ...            Obj("star", "blue", 20, 50, 8)], (0.2, 0.2, 0.2), (0, 0), 0.05, 0)
    >>> caption(s)
    'there are two red circles and a small blue star.'
    """
    parts = [phrase(*g) for g in groups(scene)]
    verb = "is" if len(parts) == 1 and groups(scene)[0][3] == 1 else "are"
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"there {verb} {listed}."


# --------------------------------------------------------------------------- rendering


def _box(px, py, hx, hy):
    import torch

    qx, qy = px.abs() - hx, py.abs() - hy
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.minimum(torch.maximum(qx, qy), torch.zeros_like(qx))


def _halfplanes(px, py, edges):
    """max over edges of n.p - d: an (approximate) SDF of a convex polygon."""
    import torch

    out = None
    for nx, ny, d in edges:
        v = px * nx + py * ny - d
        out = v if out is None else torch.maximum(out, v)
    return out


def _polygon_edges(points):
    """Outward (nx, ny, d) per edge of a counter-clockwise (in image coordinates: clockwise) polygon."""
    edges = []
    n = len(points)
    cx = sum(p[0] for p in points) / n
    cy = sum(p[1] for p in points) / n
    for i in range(n):
        (x1, y1), (x2, y2) = points[i], points[(i + 1) % n]
        nx, ny = y2 - y1, -(x2 - x1)
        norm = math.hypot(nx, ny)
        nx, ny = nx / norm, ny / norm
        if (cx - x1) * nx + (cy - y1) * ny > 0:
            nx, ny = -nx, -ny
        edges.append((nx, ny, x1 * nx + y1 * ny))
    return edges


_TRIANGLE = _polygon_edges([(0.0, -1.0), (0.95, 0.72), (-0.95, 0.72)])
_ARROW_HEAD = _polygon_edges([(1.0, 0.0), (0.2, -0.65), (0.2, 0.65)])
_STAR_OUT, _STAR_IN = 1.0, 0.42


def _sdf(kind: str, px, py):
    """Signed distance (in unit coordinates: the object spans about [-1, 1]) of one kind."""
    import torch

    r = torch.sqrt(px * px + py * py)
    if kind == "circle":
        return r - 0.95
    if kind == "ring":
        return (r - 0.7).abs() - 0.26
    if kind == "square":
        return _box(px, py, 0.82, 0.82)
    if kind == "diamond":
        a, b = 0.62, 1.0
        return (b * px.abs() + a * py.abs() - a * b) / math.hypot(a, b)
    if kind == "triangle":
        return _halfplanes(px, py, _TRIANGLE)
    if kind == "cross":
        return torch.minimum(_box(px, py, 0.95, 0.3), _box(px, py, 0.3, 0.95))
    if kind == "heart":
        s = math.sqrt(0.5)
        rx, ry = (px + (py - 0.12)) * s, (-px + (py - 0.12)) * s
        body = _box(rx, ry, 0.52, 0.52)
        lobes = torch.minimum(torch.sqrt((px - 0.37) ** 2 + (py + 0.3) ** 2),
                              torch.sqrt((px + 0.37) ** 2 + (py + 0.3) ** 2)) - 0.5
        return torch.minimum(body, lobes)
    if kind == "moon":
        return torch.maximum(r - 0.95, -(torch.sqrt((px - 0.45) ** 2 + (py + 0.25) ** 2) - 0.78))
    if kind == "star":
        m = 2 * math.pi / 5
        a = torch.remainder(torch.atan2(py, px) + math.pi / 2, m) - m / 2
        qx, qy = r * torch.cos(a), (r * torch.sin(a)).abs()
        # the edge from the tip (R, 0) to the inner corner (rho cos(m/2), rho sin(m/2))
        x1, y1 = _STAR_OUT, 0.0
        x2, y2 = _STAR_IN * math.cos(m / 2), _STAR_IN * math.sin(m / 2)
        nx, ny = y2 - y1, -(x2 - x1)
        norm = math.hypot(nx, ny)
        nx, ny = nx / norm, ny / norm
        if nx < 0:
            nx, ny = -nx, -ny
        return (qx - x1) * nx + (qy - y1) * ny
    if kind == "arrow":
        return torch.minimum(_box(px + 0.35, py, 0.6, 0.17), _halfplanes(px, py, _ARROW_HEAD))
    raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")


def pack(scenes: Sequence[Scene], slots: int = 4) -> dict[str, np.ndarray]:
    """Scene parameters as arrays ``(B, slots)`` (objects) and ``(B, k)`` (backgrounds)."""
    b = len(scenes)
    out = {
        "present": np.zeros((b, slots), bool), "kind": np.zeros((b, slots), np.int64),
        "colour": np.zeros((b, slots, 3), np.float32), "colour_id": np.zeros((b, slots), np.int64),
        "geom": np.zeros((b, slots, 4), np.float32), "alpha": np.zeros((b, slots), np.float32),
        "background": np.zeros((b, 3), np.float32), "gradient": np.zeros((b, 2), np.float32),
        "noise": np.zeros((b,), np.float32),
    }
    for i, s in enumerate(scenes):
        for j, o in enumerate(s.objects[:slots]):
            out["present"][i, j] = True
            out["kind"][i, j] = KINDS.index(o.kind)
            out["colour"][i, j] = RGB[o.colour]
            out["colour_id"][i, j] = COLOURS.index(o.colour)
            out["geom"][i, j] = (o.cx, o.cy, o.size, o.angle)
            out["alpha"][i, j] = o.alpha
        out["background"][i] = s.background
        out["gradient"][i] = s.gradient
        out["noise"][i] = s.noise
    return out


def render_packed(p: dict[str, Any], noise, device: Any = "cpu"):
    """Render packed scenes; ``noise`` is a ``(B, 3, 64, 64)`` standard-normal tensor.

    Returns ``(images (B, 3, 64, 64) in [0, 1] quantised to 1/255, coverage (B, slots, 64, 64))``.
    """
    import torch

    t = {k: torch.as_tensor(v, device=device) for k, v in p.items()}
    b, slots = t["kind"].shape
    ys, xs = torch.meshgrid(torch.arange(SIZE, device=device, dtype=torch.float32) + 0.5,
                            torch.arange(SIZE, device=device, dtype=torch.float32) + 0.5, indexing="ij")
    ramp_x, ramp_y = xs / SIZE - 0.5, ys / SIZE - 0.5
    bg = t["background"][:, :, None, None] + (t["gradient"][:, 0, None, None] * ramp_x
                                              + t["gradient"][:, 1, None, None] * ramp_y)[:, None]
    image = bg.expand(b, 3, SIZE, SIZE).clone()
    coverage = torch.zeros(b, slots, SIZE, SIZE, device=device)
    geom = t["geom"]
    for k, kind in enumerate(KINDS):
        sel = (t["kind"] == k) & t["present"]
        if not bool(sel.any()):
            continue
        g = geom[sel]
        cx, cy, size, angle = (g[:, i, None, None] for i in range(4))
        half = size / 2
        dx, dy = (xs - cx) / half, (ys - cy) / half
        cos, sin = torch.cos(angle), torch.sin(angle)
        px, py = cos * dx + sin * dy, -sin * dx + cos * dy
        d = _sdf(kind, px, py) * half
        coverage[sel] = (0.5 - d).clamp(0, 1)
    for j in range(slots):
        a = (coverage[:, j] * t["alpha"][:, j, None, None])[:, None]
        image = image * (1 - a) + t["colour"][:, j, :, None, None] * a
    image = image + noise.to(device) * t["noise"][:, None, None, None]
    image = torch.round(image.clamp(0, 1) * 255) / 255
    return image, coverage


def scene_noise(scenes: Sequence[Scene]):
    """The per-scene pixel noise (from each scene's own ``noise_seed``) as a ``(B, 3, 64, 64)`` tensor."""
    import torch

    arrays = [np.random.default_rng(s.noise_seed).standard_normal((3, SIZE, SIZE), dtype=np.float32) for s in scenes]
    return torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros(0, 3, SIZE, SIZE)


def boxes_from_coverage(coverage) -> np.ndarray:
    """Tight ``(x1, y1, x2, y2)`` pixel boxes of the pixels at least half covered; ``(B, slots, 4)``."""
    import torch

    mask = coverage >= 0.5
    cols, rows = mask.any(dim=2), mask.any(dim=3)
    idx = torch.arange(SIZE, device=coverage.device)
    big = SIZE + 1
    x1 = torch.where(cols, idx, big).min(dim=2).values
    x2 = torch.where(cols, idx, -1).max(dim=2).values + 1
    y1 = torch.where(rows, idx, big).min(dim=2).values
    y2 = torch.where(rows, idx, -1).max(dim=2).values + 1
    return torch.stack([x1, y1, x2, y2], dim=-1).cpu().numpy().astype(np.float32)


def truth(scene: Scene, boxes: np.ndarray | None = None) -> dict[str, Any]:
    """Ground truth of a scene: kinds, counts, colours per kind, objects with boxes.

    >>> s = make_scene(0, "test", 0)
    >>> t = truth(s)
    >>> sorted(t["kinds"]) == sorted(s.kinds) and sum(t["counts"].values()) == len(s.objects)
    True
    """
    objects = []
    for j, o in enumerate(scene.objects):
        item = {"kind": o.kind, "colour": o.colour, "small": o.small, "faint": o.faint, "companion": o.companion}
        if boxes is not None:
            item["box"] = [float(v) for v in boxes[j]]
        objects.append(item)
    counts: dict[str, int] = {}
    colours: dict[str, list[str]] = {}
    for o in scene.objects:
        counts[o.kind] = counts.get(o.kind, 0) + 1
        colours.setdefault(o.kind, [])
        if o.colour not in colours[o.kind]:
            colours[o.kind].append(o.colour)
    return {"name": scene.name, "kinds": sorted(scene.kinds, key=KINDS.index), "counts": counts,
            "colours": colours, "objects": objects, "caption": caption(scene),
            "prior_break": list(scene.prior_break) if scene.prior_break else None}


def render(scenes: Sequence[Scene], device: Any = "cpu") -> tuple[Any, list[dict[str, Any]]]:
    """Images ``(B, 3, 64, 64)`` (float in [0, 1]) and ground truth (with boxes) for ``scenes``."""
    images, coverage = render_packed(pack(scenes), scene_noise(scenes), device)
    boxes = boxes_from_coverage(coverage)
    return images, [truth(s, boxes[i]) for i, s in enumerate(scenes)]


def to_pil(images) -> list[Any]:
    """Float images ``(B, 3, H, W)`` in [0, 1] to RGB ``PIL.Image`` s."""
    from PIL import Image

    arr = (images.clamp(0, 1) * 255).round().to("cpu").byte().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a, "RGB") for a in arr]
