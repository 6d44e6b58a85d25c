"""Readers for labelled face sets used in evaluation: our ``labels.json``, a folder of Pascal VOC
XML files, COCO JSON, and the WIDER FACE text formats (:mod:`featherface.data.annotations`).

Every reader returns ``{image name: ImageAnnotation}`` keyed by the image path relative to the
images folder, with PIXEL boxes ``(K, 4)`` ``x1, y1, x2, y2`` in the image as stored (continuous
coordinates: VOC ``xmin..xmax`` and COCO ``x, y, x + w, y + h`` as given, no +1), landmarks
``(K, 5, 2)`` pixels (image-left eye first) and ``has_landmarks (K,)``. Malformed input raises
:class:`AnnotationError` naming the file and the line, element or entry.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .annotations import AnnotationError, ImageAnnotation, read_annotations

FaceLabels = dict[str, ImageAnnotation]


def _record(name: str, boxes: list, landmarks: list | None = None) -> ImageAnnotation:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    lm = np.zeros((len(b), 5, 2), np.float32)
    has = np.zeros(len(b), bool)
    for i, pts in enumerate(landmarks or []):
        if pts is not None:
            lm[i] = np.asarray(pts, np.float32).reshape(5, 2)
            has[i] = True
    return ImageAnnotation(name, b, lm, has)


def _numbers(values) -> bool:
    """A list of JSON numbers (a string such as "10" is a labelling mistake, not a number)."""
    return isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _check_boxes(path: Path, where: str, boxes) -> None:
    for k, box in enumerate(boxes):
        if not _numbers(box):
            raise AnnotationError(path, None, f"{where}: box {k} must be a list of 4 numbers, got {json.dumps(box)[:80]}")
        if len(box) != 4:
            raise AnnotationError(path, None, f"{where}: box {k} has {len(box)} numbers, expected 4")
        x1, y1, x2, y2 = (float(v) for v in box)
        if not np.isfinite([x1, y1, x2, y2]).all() or x2 < x1 or y2 < y1:
            raise AnnotationError(path, None, f"{where}: box {k} {list(box)} is not x1 <= x2, y1 <= y2 (finite)")


def read_labels_json(path: str | Path) -> FaceLabels:
    """Our format: ``{"images": {name: {"boxes": [[x1, y1, x2, y2], ...], "landmarks": [null or
    10 numbers, ...]}}}`` (the format of the benchmark sets' labels.json)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise AnnotationError(path, None, 'expected an object with an "images" object (labels.json format)')
    out: FaceLabels = {}
    for name, item in data["images"].items():
        boxes = item.get("boxes") if isinstance(item, dict) else None
        if not isinstance(boxes, list):
            raise AnnotationError(path, None, f'images["{name}"]: "boxes" must be a list')
        _check_boxes(path, f'images["{name}"]', boxes)
        landmarks = item.get("landmarks") or [None] * len(boxes)
        if len(landmarks) != len(boxes) or any(p is not None and not (_numbers(p) and len(p) == 10) for p in landmarks):
            raise AnnotationError(path, None, f'images["{name}"]: "landmarks" needs one null or 10 numbers per box')
        out[name] = _record(name, boxes, landmarks)
    return out


def read_voc_folder(folder: str | Path, classes: set[str] | None = None) -> FaceLabels:
    """One Pascal VOC XML file per image; every ``<object>`` is a face unless ``classes`` names
    the ones to keep. The image name is ``<filename>`` (else the XML's stem + ``.jpg``)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.xml"))
    if not files:
        raise AnnotationError(folder, None, "no .xml files (Pascal VOC annotations) in this folder")
    out: FaceLabels = {}
    for f in files:
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError as exc:
            raise AnnotationError(f, exc.position[0], f"not valid XML ({exc})") from None
        name = (root.findtext("filename") or f"{f.stem}.jpg").strip()
        boxes = []
        for k, obj in enumerate(root.iter("object")):
            if classes is not None and (obj.findtext("name") or "").strip() not in classes:
                continue
            bb = obj.find("bndbox")
            if bb is None:
                raise AnnotationError(f, None, f"<object> {k + 1} has no <bndbox>")
            try:
                box = [float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")]
            except (TypeError, ValueError):
                raise AnnotationError(f, None, f"<object> {k + 1}: <bndbox> needs numeric xmin, ymin, xmax, ymax") from None
            boxes.append(box)
        _check_boxes(f, "<bndbox>", boxes)
        out[name] = _record(name, boxes)
    return out


def read_coco_json(path: str | Path, classes: set[str] | None = None) -> FaceLabels:
    """COCO detection JSON: ``images`` (id, file_name), ``annotations`` (image_id, bbox
    ``[x, y, w, h]``, optional ``keypoints`` with 5 points ``x, y, v``; points with ``v = 0`` mean
    no landmarks), ``categories`` (filtered by ``classes`` when given). Crowd annotations
    (``iscrowd = 1``) are skipped."""
    path = Path(path)
    data = _load_json(path)
    try:
        names = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
        cats = {int(c["id"]): str(c.get("name", c["id"])) for c in data.get("categories", [])}
        anns = data["annotations"]
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationError(path, None, f"not COCO detection JSON (images/annotations/categories): {exc}") from None
    per_image: dict[str, tuple[list, list]] = {n: ([], []) for n in names.values()}
    for k, a in enumerate(anns):
        if a.get("iscrowd"):
            continue
        if classes is not None and cats.get(a.get("category_id"), "") not in classes:
            continue
        try:
            name = names[int(a["image_id"])]
            x, y, w, h = (float(v) for v in a["bbox"])
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(path, None, f"annotations[{k}]: needs an image_id listed in images and bbox [x, y, w, h]") from None
        if not np.isfinite([x, y, w, h]).all() or w < 0 or h < 0:
            raise AnnotationError(path, None, f"annotations[{k}]: bbox {a['bbox']} is not finite with w, h >= 0")
        kp = a.get("keypoints")
        pts = None
        if kp and len(kp) >= 15 and all(float(v) > 0 for v in kp[2:15:3]):
            pts = [float(kp[i + j]) for i in range(0, 15, 3) for j in (0, 1)]
        per_image[name][0].append([x, y, x + w, y + h])
        per_image[name][1].append(pts)
    return {n: _record(n, b, lm) for n, (b, lm) in per_image.items()}


def read_face_labels(path: str | Path, classes: set[str] | None = None) -> FaceLabels:
    """Read any supported format, chosen by what ``path`` is: a folder of ``.xml`` files (VOC),
    a ``.json`` with an ``"images"`` object (ours) or list (COCO), or a ``.txt`` WIDER FACE /
    RetinaFace label file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"labels not found: {path}")
    if path.is_dir():
        return read_voc_folder(path, classes)
    if path.suffix.lower() == ".json":
        data = _load_json(path)
        if isinstance(data, dict) and isinstance(data.get("images"), list):
            return read_coco_json(path, classes)
        return read_labels_json(path)
    if path.suffix.lower() == ".xml":
        raise AnnotationError(path, None, "give the FOLDER of VOC .xml files, not one file")
    return {r.path: r for r in read_annotations(path)}


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, exc.lineno, f"not valid JSON ({exc.msg})") from None
