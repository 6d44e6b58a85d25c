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
import tempfile
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


def read_image(path: str | Path) -> np.ndarray:
    """Read a BGR image; raise ``ValueError`` naming the file when it cannot be decoded."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: cannot be read as an image (missing, corrupt or unsupported format)")
    return img


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
    ok, buf = cv2.imencode(path.suffix or ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise ValueError(f"cannot encode image for {path}")
    atomic_write_bytes(path, buf.tobytes())
