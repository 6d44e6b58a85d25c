"""The training photo pool: many photos of people, few of them with human face boxes, labelled
ONLINE by the teacher during distillation.

Why online: labelling the ~24,000 photos once with V1 costs about 50 minutes of a 2-core CPU
before the first step, while distillation runs the teacher on every training crop anyway (for
the KD term). Decoding that same teacher output into boxes (:func:`featherface.training.labels.
teacher_targets`) gives pseudo-labels for free, on exactly the pixels the student sees, including
mosaics and zoomed-out crops.

Items are ``(image (3, S, S) float32, target)`` like :mod:`featherface.data.dataset`, where
``target["boxes"]`` holds the HUMAN boxes that survive the augmentation (normalised xyxy; empty
for photos without human labels) already converted to the teacher's box convention, and
``target["online"] = True`` asks the training loop to add the teacher's detections.

Augmentation of item ``i`` in epoch ``e`` is drawn from ``default_rng([seed, e, i])`` (resumable):

* a random square crop (side = 0.3..1.0 of the short side) anywhere -- no face is required
  inside, a crop without faces is a useful negative; or, with ``zoom_out_prob``, the whole photo
  placed at a random scale on a mean-colour canvas (face crops become small faces);
* with ``mosaic_prob``: a 2x2 mosaic of four photos, each a quarter of the output, so the
  student sees crowds of small faces;
* photometric distortion, mirror, resize to ``image_size``, mean subtraction (as in
  :class:`featherface.data.transforms.TrainTransform`).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..constants import MEAN_BGR
from ..files import list_images
from ..files import read_image
from .transforms import CROP_SCALES, INTERPOLATIONS, Sample, mirror, photometric_distort

log = logging.getLogger(__name__)

#: Default per-source sampling multiplicities for the training photo pool (sources: model card):
#: masked faces in real scenes are rare (1,013 photos) and doubled; the 3,983 tight face crops
#: are halved (they teach little beyond one big face each); the WIDER sample is doubled.
DEFAULT_SOURCE_WEIGHTS: dict[str, float] = {"masked_faces_rwmfd": 2.0, "face_crops_masks": 0.5, "wider_sample": 2.0}


@dataclass(frozen=True)
class BoxConvention:
    """Affine map from human "tight" boxes to the teacher's convention, per box:
    ``w' = w * w_scale``, ``h' = h * h_scale``, centre moved by ``(dx * w, dy * h)``.

    The defaults are the medians measured by ``scripts/box_convention.py`` between V1's
    detections and the human boxes of 120 labelled pool photos (groupselfies, 459 matched faces):
    V1's boxes are 0.85x as wide, 1.06x as tall and sit 3 % lower-right."""

    w_scale: float = 0.853
    h_scale: float = 1.061
    dx: float = 0.033
    dy: float = 0.028

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        if len(boxes) == 0:
            return boxes
        wh = boxes[:, 2:] - boxes[:, :2]
        c = (boxes[:, :2] + boxes[:, 2:]) / 2 + wh * np.array([self.dx, self.dy], np.float32)
        half = wh * np.array([self.w_scale, self.h_scale], np.float32) / 2
        return np.concatenate([c - half, c + half], axis=1).astype(np.float32)


def read_pool(root: str | Path, labels: str | Path | None = None,
              source_weights: dict[str, float] | None = None) -> tuple[list[str], dict[str, np.ndarray]]:
    """List the pool's photos (paths relative to ``root``) with per-source multiplicities applied,
    and read the human boxes of ``labels`` (our ``labels.json`` format, keys relative to root).

    The source of a photo is its first path component. A weight ``w`` keeps ``floor(w)`` copies
    of every photo plus one more copy of a deterministic ``frac(w)`` share of them."""
    root = Path(root)
    files = list_images(root)
    weights = DEFAULT_SOURCE_WEIGHTS if source_weights is None else source_weights
    entries: list[str] = []
    for i, rel in enumerate(files):
        w = weights.get(Path(rel).parts[0], 1.0)
        copies = int(w) + (1 if (i * 0.6180339887) % 1.0 < w - int(w) else 0)
        entries.extend([rel] * copies)
    human: dict[str, np.ndarray] = {}
    if labels:
        data = json.loads(Path(labels).read_text())
        for rel, item in data["images"].items():
            human[rel] = np.asarray(item["boxes"], np.float32).reshape(-1, 4)
    log.info("pool %s: %d photos -> %d samples per pass (source weights %s); human boxes on %d photos",
             root, len(files), len(entries), weights, len(human))
    return entries, human


class PoolDataset(Dataset):
    """Photos of the pool, augmented for online teacher labelling (see module docstring)."""

    def __init__(self, root: str | Path, entries: list[str], human: dict[str, np.ndarray], image_size: int = 480,
                 seed: int = 0, mosaic_prob: float = 0.25, zoom_out_prob: float = 0.15,
                 convention: BoxConvention = BoxConvention()) -> None:
        if not entries:
            raise ValueError(f"no photos in the pool under {root}")
        self.root, self.entries, self.image_size, self.seed = Path(root), entries, image_size, seed
        self.mosaic_prob, self.zoom_out_prob = mosaic_prob, zoom_out_prob
        self.human = {k: convention.apply(v) for k, v in human.items()}
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.entries)

    def _load(self, index: int) -> Sample:
        rel = self.entries[index]
        try:
            image = read_image(self.root / rel)
        except ValueError as exc:  # an unreadable photo becomes a blank negative, not a crash
            log.warning("pool: %s", exc)
            image = np.full((self.image_size, self.image_size, 3), MEAN_BGR, np.uint8)
        boxes = self.human.get(rel, np.zeros((0, 4), np.float32))
        return Sample(image, boxes.copy(), np.zeros((len(boxes), 5, 2), np.float32), np.zeros(len(boxes), bool))

    def _view(self, s: Sample, side_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One square view of ``s`` resized to ``side_out``: random crop or zoom-out. Returns the
        uint8 image and the boxes in its pixels (faces whose centre left the view are dropped)."""
        h, w = s.image.shape[:2]
        if rng.random() < self.zoom_out_prob:
            side = int(max(h, w) * rng.uniform(1.0, 2.5))  # whole photo on a larger canvas
            canvas = np.empty((side, side, 3), np.uint8)
            canvas[:] = np.asarray(MEAN_BGR, np.uint8)
            left, top = int(rng.integers(side - w + 1)), int(rng.integers(side - h + 1))
            canvas[top:top + h, left:left + w] = s.image
            img, boxes = canvas, s.boxes + np.array([left, top, left, top], np.float32)
        else:
            side = max(1, int(rng.choice(CROP_SCALES) * min(h, w)))
            left, top = int(rng.integers(w - side + 1)), int(rng.integers(h - side + 1))
            img = s.image[top:top + side, left:left + side]
            boxes = s.boxes - np.array([left, top, left, top], np.float32)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            boxes = np.clip(boxes[((centres > 0) & (centres < side)).all(axis=1)], 0, side)
        interp = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]
        img = cv2.resize(img, (side_out, side_out), interpolation=interp)
        return img, boxes * (side_out / side)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        size = self.image_size
        if rng.random() < self.mosaic_prob:
            half = size // 2
            image = np.empty((size, size, 3), np.uint8)
            parts = []
            others = rng.integers(len(self.entries), size=3)
            for k, idx in enumerate([index, *others.tolist()]):
                img, boxes = self._view(self._load(int(idx)), half, rng)
                oy, ox = (k // 2) * half, (k % 2) * half
                image[oy:oy + half, ox:ox + half] = img
                parts.append(boxes + np.array([ox, oy, ox, oy], np.float32))
            boxes = np.concatenate(parts)
        else:
            image, boxes = self._view(self._load(index), size, rng)
        image = photometric_distort(image, rng)
        s = Sample(image, boxes, np.zeros((len(boxes), 5, 2), np.float32), np.zeros(len(boxes), bool))
        if rng.random() < 0.5:
            s = mirror(s)
        wh = s.boxes[:, 2:] - s.boxes[:, :2]
        keep = (wh >= 2).all(axis=1)  # drop slivers left by the crop
        x = (s.image.astype(np.float32) - np.asarray(MEAN_BGR, np.float32)).transpose(2, 0, 1)
        target = {"boxes": torch.from_numpy(s.boxes[keep] / size).float(),
                  "landmarks": torch.zeros(int(keep.sum()), 10), "has_landmarks": torch.zeros(int(keep.sum()), dtype=torch.bool),
                  "index": index, "online": True}
        return torch.from_numpy(np.ascontiguousarray(x)), target
