"""Inputs and outputs of ``featherface detect``: finding images/videos, drawing results, and
writing JSON atomically."""
from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from .checkpoint import give_default_permissions
from .postprocess import Detection

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
# Landmark colours (BGR) in LANDMARK_NAMES order: eyes, nose, mouth corners.
LANDMARK_COLORS = ((255, 0, 0), (0, 255, 255), (255, 0, 255), (0, 255, 0), (0, 128, 255))


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def list_sources(source: str) -> list[Path]:
    """Expand SOURCE (an image, a video, a folder or a glob pattern) into sorted files."""
    p = Path(source)
    if p.is_dir():
        files = [f for f in sorted(p.rglob("*")) if f.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS]
    elif p.is_file():
        files = [p]
    else:
        files = [Path(f) for f in sorted(glob.glob(source, recursive=True)) if Path(f).is_file()]
    if not files:
        raise FileNotFoundError(f"no images or videos found for {source!r}")
    return files


def read_image(path: Path) -> np.ndarray:
    """Read a BGR image; raise ``ValueError`` naming the file when it cannot be decoded."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: cannot be read as an image (missing, corrupt or unsupported format)")
    return img


def read_folder_images(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """Every readable image under ``folder`` (recursively, sorted) as ``(relative path, BGR
    image)``; unreadable files are logged and skipped."""
    import logging

    folder = Path(folder)
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in IMAGE_EXTS or not p.is_file():
            continue
        try:
            out.append((str(p.relative_to(folder)), read_image(p)))
        except ValueError as exc:
            logging.getLogger(__name__).warning("skipped: %s", exc)
    return out


def draw_detections(image: np.ndarray, faces: Iterable[Detection]) -> np.ndarray:
    """A copy of ``image`` with boxes, scores and the five landmarks drawn."""
    out = image.copy()
    thick = max(1, round(max(out.shape[:2]) / 600))
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), thick)
        cv2.putText(out, f"{f.score:.2f}", (x1, max(0, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thick, (255, 255, 255), thick, cv2.LINE_AA)
        for (x, y), c in zip(f.landmarks, LANDMARK_COLORS):
            if not (np.isfinite(x) and np.isfinite(y)):  # detectors without landmarks give NaN
                continue
            cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, c, -1)
    return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    give_default_permissions(tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_image(path: Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    ok, buf = cv2.imencode(path.suffix or ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise ValueError(f"cannot encode image for {path}")
    _atomic_write_bytes(path, buf.tobytes())


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")
