"""Dataset sanity checks behind ``featherface check-data``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.files import read_image
from .annotations import AnnotationError, read_annotations


def check_dataset(labels: Path, images: Path | None = None) -> tuple[list[str], str]:
    """Return ``(problems, summary)``. Every malformed line is a problem (with file:line); then
    every image is checked for: file present and decodable, boxes inside the image, degenerate
    (zero-area) boxes, landmarks outside their box."""
    parse_errors: list[AnnotationError] = []
    try:
        records = read_annotations(labels, parse_errors)
    except AnnotationError as exc:
        return [str(e) for e in parse_errors] + [str(exc)], f"{labels}: cannot be parsed"
    problems: list[str] = [str(e) for e in parse_errors]  # every malformed line, not just the first
    n_faces = sum(len(r) for r in records)
    n_lm = sum(int(r.has_landmarks.sum()) for r in records)
    for r in records:
        where = f"{labels}:{r.line} ({r.path})"
        size = None
        if images is not None:
            p = images / r.path
            if not p.is_file():
                problems.append(f"{where}: image file missing: {p}")
            else:
                try:  # as strictly as detect decodes: truncated or damaged data is a problem too
                    size = read_image(p).shape[:2]
                except ValueError as exc:
                    problems.append(f"{where}: image cannot be decoded: {exc}")
        if len(r) == 0:
            continue
        wh = r.boxes[:, 2:] - r.boxes[:, :2]
        degenerate = np.flatnonzero((wh <= 0).any(axis=1))
        if degenerate.size:
            problems.append(f"{where}: {degenerate.size} zero-area box(es) (faces {degenerate[:5].tolist()}); training drops them")
        if size is not None:
            h, w = size
            out = np.flatnonzero((r.boxes[:, 0] < -1) | (r.boxes[:, 1] < -1) | (r.boxes[:, 2] > w + 1) | (r.boxes[:, 3] > h + 1))
            if out.size:
                problems.append(f"{where}: {out.size} box(es) extend outside the {w}x{h} image (faces {out[:5].tolist()})")
        lm = r.landmarks[r.has_landmarks]
        bx = r.boxes[r.has_landmarks]
        if len(lm):
            margin = 0.5 * (bx[:, 2:] - bx[:, :2])[:, None, :]
            outside = ((lm < bx[:, None, :2] - margin) | (lm > bx[:, None, 2:] + margin)).any(axis=(1, 2))
            if outside.any():
                problems.append(f"{where}: {int(outside.sum())} face(s) with landmarks far outside their box")
    summary = (f"{labels}: {len(records)} images, {n_faces} faces, {n_lm} with landmarks, "
               f"{sum(1 for r in records if len(r) == 0)} images without faces; {len(problems)} problem(s)")
    return problems, summary
