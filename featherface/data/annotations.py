"""WIDER FACE annotation readers with line-numbered errors.

All readers return :class:`ImageAnnotation` records with PIXEL boxes ``(K, 4)`` as
``x1, y1, x2, y2`` (``x2 = x + w``), landmarks ``(K, 5, 2)`` in pixels and ``has_landmarks (K,)``
(False where the label file gives -1 for the landmarks).

Formats:

* RetinaFace ``label.txt``: ``# <relative image path>`` then one line per face
  ``x y w h`` [+ 5 x (lx ly flag) + score] (20 numbers; the val file has only the 4 box numbers);
  missing landmarks are ``-1``.
* official ``wider_face_{train,val}_bbx_gt.txt``: image path line, face-count line, then that
  many lines ``x y w h blur expression illumination invalid occlusion pose``; an image with 0 faces
  still has one all-zero line.
* official ``.mat`` ground truth (``wider_face_val.mat`` plus the Easy/Medium/Hard keep-lists),
  see :func:`load_mat_ground_truth`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


class AnnotationError(ValueError):
    """Malformed annotation; the message names the file and the 1-based line."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = str(path), line


@dataclass
class ImageAnnotation:
    path: str  # relative image path as written in the file (e.g. "0--Parade/0_Parade_...jpg")
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))
    has_landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))
    attributes: dict[str, np.ndarray] | None = None  # official format only: per-face ints
    line: int = 0  # line where the image's record starts (for later error messages)

    def __len__(self) -> int:
        return len(self.boxes)


def _numbers(path: Path, lineno: int, text: str) -> list[float]:
    try:
        return [float(t) for t in text.split()]
    except ValueError:
        raise AnnotationError(path, lineno, f"expected numbers, got {text.strip()[:80]!r}") from None


def _check_box(path: Path, lineno: int, x: float, y: float, w: float, h: float) -> None:
    if not all(np.isfinite([x, y, w, h])):
        raise AnnotationError(path, lineno, "box has non-finite values")
    if w < 0 or h < 0:
        raise AnnotationError(path, lineno, f"negative box size w={w} h={h}")


def _finish(ann: ImageAnnotation, boxes: list, landmarks: list, has: list) -> None:
    if boxes:
        ann.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        ann.landmarks = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
        ann.has_landmarks = np.asarray(has, bool)


def read_retinaface_labels(path: str | Path, errors: list[AnnotationError] | None = None) -> list[ImageAnnotation]:
    """Parse a RetinaFace ``label.txt`` (see module docstring). With ``errors`` (a list), a
    malformed face line is appended there and skipped instead of stopping the parse, so every
    bad line can be reported at once."""
    path = Path(path)
    records: list[ImageAnnotation] = []
    cur: ImageAnnotation | None = None
    boxes: list = []
    landmarks: list = []
    has: list = []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                if cur is not None:
                    _finish(cur, boxes, landmarks, has)
                name = line[1:].strip()
                if not name:
                    raise AnnotationError(path, lineno, "'#' line without an image path")
                cur, boxes, landmarks, has = ImageAnnotation(name, line=lineno), [], [], []
                records.append(cur)
                continue
            try:
                if cur is None:
                    raise AnnotationError(path, lineno, "face line before any '# <image path>' line")
                v = _numbers(path, lineno, line)
                if len(v) not in (4, 5, 19, 20):
                    raise AnnotationError(path, lineno, f"expected 4 (box) or 20 (box, 5 landmarks x 3, score) numbers, got {len(v)}")
                x, y, w, h = v[:4]
                _check_box(path, lineno, x, y, w, h)
            except AnnotationError as exc:
                if errors is None:
                    raise
                errors.append(exc)
                continue
            boxes.append([x, y, x + w, y + h])
            if len(v) >= 19:
                pts = np.asarray(v[4:19], np.float32).reshape(5, 3)[:, :2]
                valid = bool(pts[0, 0] >= 0)  # RetinaFace marks missing landmarks with -1
                landmarks.append(pts if valid else np.full((5, 2), -1, np.float32))
                has.append(valid)
            else:
                landmarks.append(np.full((5, 2), -1, np.float32))
                has.append(False)
    if cur is not None:
        _finish(cur, boxes, landmarks, has)
    return records


def read_official_bbx_gt(path: str | Path) -> list[ImageAnnotation]:
    """Parse an official ``wider_face_*_bbx_gt.txt`` (see module docstring)."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        lines = [(i, l.strip()) for i, l in enumerate(fh, 1)]
    lines = [(i, l) for i, l in lines if l]
    records = []
    k = 0
    while k < len(lines):
        name_no, name = lines[k]
        if not name.lower().endswith((".jpg", ".jpeg", ".png")):
            raise AnnotationError(path, name_no, f"expected an image path, got {name[:80]!r}")
        if k + 1 >= len(lines):
            raise AnnotationError(path, name_no, "image path without a face-count line")
        count_no, count_txt = lines[k + 1]
        try:
            count = int(count_txt)
        except ValueError:
            raise AnnotationError(path, count_no, f"expected a face count, got {count_txt[:80]!r}") from None
        if count < 0:
            raise AnnotationError(path, count_no, f"negative face count {count}")
        n_lines = max(count, 1)  # 0 faces are followed by one all-zero line
        if k + 2 + n_lines > len(lines):
            raise AnnotationError(path, count_no, f"{count} faces announced but the file ends")
        boxes, attrs = [], []
        for lineno, text in lines[k + 2:k + 2 + n_lines]:
            v = _numbers(path, lineno, text)
            if len(v) != 10:
                raise AnnotationError(path, lineno, f"expected 10 numbers (x y w h + 6 attributes), got {len(v)}")
            if count == 0:
                continue
            _check_box(path, lineno, *v[:4])
            boxes.append([v[0], v[1], v[0] + v[2], v[1] + v[3]])
            attrs.append(v[4:])
        ann = ImageAnnotation(name, line=name_no)
        if boxes:
            ann.boxes = np.asarray(boxes, np.float32)
            ann.landmarks = np.full((len(boxes), 5, 2), -1, np.float32)
            ann.has_landmarks = np.zeros(len(boxes), bool)
        a = np.asarray(attrs, np.int64).reshape(-1, 6)
        ann.attributes = {name: a[:, i] for i, name in enumerate(ATTRIBUTES)}
        records.append(ann)
        k += 2 + n_lines
    return records


def read_annotations(path: str | Path, errors: list[AnnotationError] | None = None) -> list[ImageAnnotation]:
    """Read either text format, detected from the first non-empty line. ``errors``: see
    :func:`read_retinaface_labels` (the official format still stops at its first error, since a
    wrong count line misaligns everything after it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    with open(path, encoding="utf-8") as fh:
        first = next((l.strip() for l in fh if l.strip()), "")
    if first.startswith("#"):
        return read_retinaface_labels(path, errors)
    return read_official_bbx_gt(path)


@dataclass
class MatGroundTruth:
    """The official validation ground truth: per event, per image, boxes as ``x, y, w, h`` and the
    1-based indices of the faces kept in each setting (the others are "ignore" faces)."""

    events: list[str]
    images: list[list[str]]  # per event: image names without extension
    boxes: list[list[np.ndarray]]  # per event, per image: (K, 4) float64 x, y, w, h
    keep: dict[str, list[list[np.ndarray]]]  # setting -> per event, per image: 1-based indices

    def __iter__(self):
        for e, event in enumerate(self.events):
            for i, name in enumerate(self.images[e]):
                yield event, name, e, i

    @property
    def num_images(self) -> int:
        return sum(len(x) for x in self.images)


def load_mat_ground_truth(gt_dir: str | Path) -> MatGroundTruth:
    """Load ``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat`` from ``gt_dir``."""
    from scipy.io import loadmat

    gt_dir = Path(gt_dir)
    files = {s: gt_dir / f"wider_{s}_val.mat" for s in ("easy", "medium", "hard")}
    main = gt_dir / "wider_face_val.mat"
    for f in (main, *files.values()):
        if not f.is_file():
            raise FileNotFoundError(f"WIDER FACE ground truth file missing: {f}")
    gt = loadmat(str(main))
    events = [str(e[0][0]) for e in gt["event_list"]]
    images = [[str(n[0][0]) for n in fl[0]] for fl in gt["file_list"]]
    boxes = [[b[0].astype(np.float64).reshape(-1, 4) for b in ev[0]] for ev in gt["face_bbx_list"]]
    keep = {}
    for setting, f in files.items():
        m = loadmat(str(f))["gt_list"]
        keep[setting] = [[np.asarray(k[0], np.int64).reshape(-1) for k in ev[0]] for ev in m]
    return MatGroundTruth(events, images, boxes, keep)
