"""Datasets for training.

* :class:`WiderFaceDataset`: a WIDER-style folder (``<root>/<relative path>``) plus a label file in
  either text format (:func:`annotations.read_annotations`).
* :class:`PseudoLabelDataset`: any folder of photographs, labelled by a teacher's detections
  (boxes and landmarks above a confidence threshold, after NMS), see :func:`pseudo_label`.

Items are ``(image (3, S, S) float32 tensor, target dict)`` with target ``boxes (K, 4)``,
``landmarks (K, 10)`` (normalised), ``has_landmarks (K,)`` bool, ``index``. The augmentation of
item ``i`` in epoch ``e`` is drawn from ``numpy.random.default_rng([seed, e, i])``.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.files import read_image
from .annotations import ImageAnnotation, read_annotations
from .transforms import Sample, TrainTransform

log = logging.getLogger(__name__)


class AugmentedDataset(Dataset):
    """Shared logic: records -> augmented samples with per-(seed, epoch, index) randomness."""

    def __init__(self, root: Path, records: list[ImageAnnotation], image_size: int = 640, seed: int = 0, repeats: int = 1) -> None:
        self.root = Path(root)
        self.records = records
        self.transform = TrainTransform(image_size)
        self.seed = seed
        self.epoch = 0
        # An "epoch" may pass over a small dataset several times (each pass with fresh
        # augmentations): fewer, longer epochs avoid re-spawning loader workers every few steps.
        self.repeats = max(1, repeats)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records) * self.repeats

    def __getitem__(self, index: int):
        r = self.records[index % len(self.records)]
        image = read_image(self.root / r.path)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        s = Sample(image, r.boxes.astype(np.float32), r.landmarks.astype(np.float32), r.has_landmarks.astype(bool))
        x, boxes, landmarks, has = self.transform(s, rng)
        target = {"boxes": torch.from_numpy(boxes), "landmarks": torch.from_numpy(landmarks),
                  "has_landmarks": torch.from_numpy(has), "index": index}
        return torch.from_numpy(x), target


class WiderFaceDataset(AugmentedDataset):
    def __init__(self, root: str | Path, labels: str | Path, image_size: int = 640, seed: int = 0,
                 keep_empty: bool = False, repeats: int = 1) -> None:
        records = read_annotations(labels)
        if not keep_empty:
            records = [r for r in records if len(r)]
        if not records:
            raise ValueError(f"{labels}: no annotated images")
        super().__init__(Path(root), records, image_size, seed, repeats)


def pseudo_label(detector, folder: str | Path, files: list[str], cache: Path | None = None,
                 teacher_id: str = "") -> list[ImageAnnotation]:
    """Label ``files`` (relative to ``folder``) with ``detector``'s detections; cached in
    ``cache`` (JSON) keyed by the teacher id, thresholds and file list, so reruns and resumed runs
    reuse them."""
    key = hashlib.sha256(json.dumps([teacher_id, detector.cfg.score_threshold, detector.cfg.nms_iou,
                                     detector.long_side, files]).encode()).hexdigest()
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return [_record_from_json(r) for r in data["records"]]
    records = []
    for rel in files:
        try:
            image = read_image(Path(folder) / rel)
        except ValueError as exc:  # e.g. an empty or truncated file: skip it, say so
            log.warning("pseudo-labels: skipping %s", exc)
            continue
        d = detector.detect_arrays(image)
        records.append(ImageAnnotation(rel, d.boxes.astype(np.float32), d.landmarks.astype(np.float32),
                                       np.ones(len(d), bool)))
    if cache is not None:
        from ..core.files import write_json

        write_json(cache, {"key": key, "records": [_record_to_json(r) for r in records]})
    return records


def _record_to_json(r: ImageAnnotation) -> dict:
    return {"path": r.path, "boxes": r.boxes.tolist(), "landmarks": r.landmarks.tolist(),
            "has_landmarks": r.has_landmarks.tolist()}


def _record_from_json(d: dict) -> ImageAnnotation:
    return ImageAnnotation(d["path"], np.asarray(d["boxes"], np.float32).reshape(-1, 4),
                           np.asarray(d["landmarks"], np.float32).reshape(-1, 5, 2),
                           np.asarray(d["has_landmarks"], bool).reshape(-1))


class PseudoLabelDataset(AugmentedDataset):
    """Photographs labelled by a teacher (images the teacher finds no face in are dropped)."""

    def __init__(self, root: str | Path, records: list[ImageAnnotation], image_size: int = 640, seed: int = 0,
                 repeats: int = 1) -> None:
        kept = [r for r in records if len(r)]
        if not kept:
            raise ValueError(f"the teacher found no faces in any image under {root}")
        super().__init__(Path(root), kept, image_size, seed, repeats)


def collate(batch):
    """Stack images; keep per-image targets as a list (face counts differ)."""
    images = torch.stack([b[0] for b in batch])
    return images, [b[1] for b in batch]
