"""Images as the pipeline sees them: resolved, read once, hashed, decoded lazily.

An :class:`ImageRef` names one image by path and/or annotation key. Reading it checks that it
exists and decodes, and its ``sha1`` (of the file's bytes) keys the detection cache, so the same
picture under two names is detected once.

>>> from PIL import Image as PILImage
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "red.png"
>>> PILImage.new("RGB", (4, 3), "red").save(path)
>>> ref = ImageRef(path=path, key="red.png")
>>> ref.pil().size, len(ref.sha1)
((4, 3), 40)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluguard.records import RecordError


@dataclass(eq=False)
class ImageRef:
    """One image: ``path`` on disk (may be ``None`` for annotation-only keys) and ``key``.

    ``key`` is what annotation backends look up: the ``image_id`` when given, else the file name.
    """

    path: Path | None
    key: str | None = None
    _sha1: str | None = field(default=None, repr=False)
    _pil: Any = field(default=None, repr=False)

    @property
    def sha1(self) -> str:
        """Content hash of the file (or of the key when there is no file)."""
        if self._sha1 is None:
            if self.path is None:
                self._sha1 = "key:" + str(self.key)
            else:
                self._sha1 = hashlib.sha1(self._read()).hexdigest()
        return self._sha1

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()  # type: ignore[union-attr]
        except FileNotFoundError:
            raise RecordError(f"image not found: {self.path} (check --images or the path in the record)", "image")
        except (IsADirectoryError, PermissionError, OSError) as exc:
            raise RecordError(f"image unreadable: {self.path}: {exc.strerror or exc}", "image")

    def pil(self):
        """The decoded RGB image (a ``PIL.Image``), decoded once and kept."""
        if self._pil is None:
            if self.path is None:
                raise RecordError(f"no image file for key {self.key!r}: pass 'image' in the record", "image")
            data = self._read()
            self._pil = decode_image(data, self.path)
            if self._sha1 is None:  # the bytes are at hand: hash them now rather than read the file again
                self._sha1 = hashlib.sha1(data).hexdigest()
        return self._pil

    def validate(self) -> None:
        """Raise :class:`RecordError` unless the file exists and decodes."""
        self.pil()
        self.sha1  # noqa: B018 - computes and keeps the hash

    def release(self) -> None:
        """Drop the decoded pixels (keep the hash)."""
        self._pil = None


def decode_image(data: bytes, path: Path | str = "<bytes>"):
    """Decode image bytes to RGB, turning every decoder failure into a :class:`RecordError`."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, ImportError) as exc:
        # ImportError: a plugin another library registered with PIL (ultralytics' HEIF opener) is missing
        raise RecordError(f"image corrupt or not an image: {path}: {exc}", "image")
