"""Files: the one place that lists images, reads them, and writes anything atomically.

* Images are read as ``H x W x 3`` uint8 BGR (OpenCV's order); an unreadable file raises
  ``ValueError`` naming it.
* Every write goes to a temporary file in the destination folder, then is renamed over the
  target (``os.replace``), so a crash or ``kill -9`` never leaves a truncated file; the result gets
  the permissions an ordinary new file gets.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def list_images(folder: str | Path) -> list[str]:
    """Image files under ``folder`` (recursively), as sorted paths relative to it. Raises
    ``FileNotFoundError`` when there are none."""
    folder = Path(folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if is_image(p) and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images under {folder}")
    return files


# What libjpeg / libpng say (on stderr) when they decode damaged data but still return pixels.
_DAMAGE_MESSAGES = ("Premature end of JPEG file", "Corrupt JPEG data", "libpng error", "libpng warning: IDAT",
                    "Invalid SOS parameters", "Bogus ", "JPEG datastream contains no image")


class _StderrCapture:
    """Capture what C libraries write to file descriptor 2 (OpenCV's codecs report damaged data
    there and nowhere else). File descriptor 2 belongs to the whole process, so captures take
    turns (a lock): concurrent decodes would otherwise read each other's messages."""

    _lock = threading.Lock()

    def __enter__(self):
        import sys

        self._lock.acquire()
        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        self.text = self._tmp.read().decode("utf-8", "replace")
        self._tmp.close()
        self._lock.release()


def read_image(path: str | Path, strict: bool = False) -> np.ndarray:
    """Read a BGR image; raise ``ValueError`` naming the file when it cannot be decoded. With
    ``strict=True`` a file that decodes only partly (truncated or corrupted JPEG/PNG data, which
    OpenCV otherwise returns with grey or garbled regions) is an error too."""
    if strict:
        try:
            data = np.fromfile(str(path), np.uint8)  # read outside the capture's turn
        except OSError:
            data = None
        with _StderrCapture() as cap:
            img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
        damage = [line.strip() for line in cap.text.splitlines() if any(m in line for m in _DAMAGE_MESSAGES)]
        if damage and (img is not None or data is not None and data.size):
            raise ValueError(f"{path}: damaged image data ({damage[0]})")
        if img is None and data is not None and data.size and read_image_size(path) != (0, 0):
            # a valid header, then data the decoder gives up on (OpenCV's imdecode says nothing)
            raise ValueError(f"{path}: damaged image data (truncated or corrupt after a valid header)")
    else:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        reason = "missing" if not Path(path).exists() else "corrupt or unsupported format"
        raise ValueError(f"{path}: cannot be read as an image ({reason})")
    return img


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the file's header, without decoding the pixels (``imagesize``
    reads only the header), so a small file that declares a huge image is refused before it takes
    memory. ``(0, 0)`` when the header cannot be parsed (OpenCV then says whether it can decode it)."""
    import imagesize

    try:
        w, h = imagesize.get(str(path))
    except (OSError, ValueError, struct.error) as exc:
        log.debug("%s: no size from the header (%s)", path, exc)
        return 0, 0
    return (int(w), int(h)) if w > 0 and h > 0 else (0, 0)


def read_images(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """Every readable image under ``folder`` as ``(relative path, BGR image)``; unreadable files
    are logged and skipped."""
    out = []
    for rel in list_images(folder):
        try:
            out.append((rel, read_image(Path(folder) / rel)))
        except ValueError as exc:
            log.warning("skipped: %s", exc)
    return out


def _default_permissions(path: str | Path) -> None:
    # mkstemp creates owner-only files; give the ordinary 0666 minus the umask
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary path)``, then rename the temporary file over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        _default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def atomic_write_image(path: str | Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    path = Path(path)
    suffix = path.suffix.lower() or ".jpg"
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, image, params)
    if not ok:
        raise ValueError(f"cannot encode image for {path}")
    atomic_write_bytes(path, buf.tobytes())
