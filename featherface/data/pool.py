"""The training photo pool: many photos of people, few of them with human face boxes, labelled
ONLINE by the teacher during distillation.

Why online: labelling the ~24,000 photos once with V1 costs about 50 minutes of a 2-core CPU
before the first step, while distillation runs the teacher on every training crop anyway (for
the KD term). Decoding that same teacher output into boxes (:func:`featherface.training.labels.
teacher_targets`) gives pseudo-labels for free, on exactly the pixels the student sees, including
mosaics and zoomed-out crops.

Items are ``(image (3, S, S) float32, target)`` like :mod:`featherface.data.dataset`, where
``target["boxes"]`` holds the LABELLED boxes that survive the augmentation -- human boxes, or
another detector's (``scripts/label_pool.py``) -- (normalised xyxy; empty for photos without
labels) already converted to the teacher's box convention, and
``target["online"] = True`` asks the training loop to add the teacher's detections.

Augmentation of item ``i`` in epoch ``e`` is drawn from ``default_rng([seed, e, i])`` (resumable):

* a random square crop (side = 0.3..1.0 of the short side) anywhere -- no face is required
  inside, a crop without faces is a useful negative; or, with ``zoom_out_prob``, the whole photo
  placed at a random scale on a mean-colour canvas (face crops become small faces);
* with ``max_upscale`` (0: off): no crop is magnified more than that; a photo too small for it
  becomes part of a mean-colour window. Without the cap, most crops of the pool's many small
  photos (masked faces in the street: short side ~170 px) magnify them 2-7x, blurred, and cut
  off many of their faces, while an evaluation photo of 400-500 px is magnified 1.3-1.6x;
* with ``mask_prob`` (0: off): each labelled face of a photo gets a painted face mask with that
  probability (:func:`featherface.data.transforms.paint_masks`), before the view is taken. Nano
  scores small masked faces in crowds too low, and the pool's masked
  faces are few and mostly large; painted masks make labelled crowds masked ones at every size.
  ``mask_style`` chooses the plain masks or varied ones (cup-shaped, any colour, striped);
  The teacher labels the painted photo like any other; a face it then misses stays a target
  through its label (``--label-corrected-kd`` keeps the teacher's miss out of the KD term);
* with ``occlude_prob`` (0: off): each labelled face is partly covered by texture from elsewhere
  in its photo (:func:`featherface.data.transforms.occlude_faces`), after the masks and before
  the view: hands, arms, caps and heads in front hide parts of faces in crowds, where Nano's
  scores fell far below V1's. Like a masked face, an occluded one the teacher then misses stays
  a target through its label;
* with ``mosaic_prob``: a 2x2 mosaic of four photos, each a quarter of the output, so the
  student sees crowds of small faces;
* with ``negative_prob`` (0: off): the item is an image without faces and without targets
  instead (:func:`no_face_image`: uniform noise of random grain or shrunk to fine low-contrast
  noise, blurred noise, a flat colour, or painted face masks on one of those), so that the
  task's hard-negative mining (with ``--min-negatives``: a faceless image mines none otherwise)
  and the teacher's low scores there (V1: at most 0.41 on the uniform noise measured in
  training) teach "background" on textures the photos never show without faces. An earlier version's
  student fired on uniform noise without them;
* photometric distortion, mirror, resize to ``image_size``, mean subtraction (as in
  :class:`featherface.data.transforms.TrainTransform`).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.constants import MEAN_BGR
from ..core.files import list_images
from ..core.files import read_image
from .transforms import (CROP_SCALES, INTERPOLATIONS, Sample, mean_window, mirror, occlude_faces, paint_masks,
                         photometric_distort)

log = logging.getLogger(__name__)

#: Default per-source sampling multiplicities for the training photo pool (sources: model card):
#: masked faces in real scenes are rare (1,013 photos) and doubled; the 3,983 tight face crops
#: are halved (they teach little beyond one big face each); the WIDER sample is doubled.
DEFAULT_SOURCE_WEIGHTS: dict[str, float] = {"masked_faces_rwmfd": 2.0, "face_crops_masks": 0.5, "wider_sample": 2.0}


@dataclass(frozen=True)
class BoxConvention:
    """Affine map from another source's boxes (human "tight" boxes, another detector's) to the
    teacher's convention, per box: ``w' = w * w_scale``, ``h' = h * h_scale``, centre moved by
    ``(dx * w, dy * h)`` (``w, h`` the box's own size before the map).

    The defaults are the map for HUMAN boxes: medians measured between V1's detections and the
    human boxes of 120 labelled pool photos (groupselfies, 459 matched faces): V1's boxes are
    0.85x as wide, 1.06x as tall and sit 3 % lower-right. :func:`measure_convention` measures
    such a map; ``scripts/box_convention.py`` runs it on pool photos (on a spread of 120
    groupselfies photos, 427 pairs, it gives 0.870 / 1.063 / 0.036 / 0.031: the same map within
    the sampling spread, so the defaults were kept)."""

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

    def to_dict(self) -> dict[str, float]:
        return {"w_scale": self.w_scale, "h_scale": self.h_scale, "dx": self.dx, "dy": self.dy}

    @classmethod
    def from_dict(cls, d: dict) -> "BoxConvention":
        return cls(float(d["w_scale"]), float(d["h_scale"]), float(d["dx"]), float(d["dy"]))


def measure_convention(reference: list[np.ndarray], other: list[np.ndarray],
                       min_iou: float = 0.5) -> tuple[BoxConvention, int]:
    """The :class:`BoxConvention` that maps ``other``'s boxes onto ``reference``'s: per image, the
    two box sets ``(K, 4)`` xyxy pixels are matched one-to-one (Hungarian on IoU, pairs with IoU
    >= ``min_iou`` kept) and the map is the median over all pairs of the width and height ratios
    and of the centre offsets in units of ``other``'s width and height. Medians, not means: a few
    wrong matches do not move them. Returns the map and the number of matched pairs (ValueError
    when none)."""
    from scipy.optimize import linear_sum_assignment

    from ..models.anchors import box_iou

    ref_m, oth_m = [], []
    for r, o in zip(reference, other):
        r, o = np.asarray(r, np.float32).reshape(-1, 4), np.asarray(o, np.float32).reshape(-1, 4)
        if not len(r) or not len(o):
            continue
        iou = box_iou(torch.from_numpy(r), torch.from_numpy(o)).numpy()
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= min_iou
        ref_m.append(r[rows[ok]])
        oth_m.append(o[cols[ok]])
    if not ref_m or not sum(len(m) for m in ref_m):
        raise ValueError(f"no box pairs with IoU >= {min_iou}: cannot measure a convention")
    r, o = np.concatenate(ref_m), np.concatenate(oth_m)
    rw, ow = r[:, 2:] - r[:, :2], o[:, 2:] - o[:, :2]
    scale = np.median(rw / ow, axis=0)
    shift = np.median(((r[:, :2] + r[:, 2:]) - (o[:, :2] + o[:, 2:])) / 2 / ow, axis=0)
    conv = BoxConvention(*(round(float(v), 4) for v in (scale[0], scale[1], shift[0], shift[1])))
    return conv, len(r)


def label_boxes(item: dict, min_score: float = 0.5) -> np.ndarray:
    """One photo's entry of a ``labels.json`` as boxes ``(K, 4)`` float32 in the file's own pixels
    and convention; where the entry gives ``"scores"`` (a detector's labels), boxes below
    ``min_score`` are dropped."""
    b = np.asarray(item["boxes"], np.float32).reshape(-1, 4)
    if "scores" in item:
        b = b[np.asarray(item["scores"], np.float32).reshape(-1) >= min_score]
    return b


def read_pool_labels(paths: str | Path | list, min_score: float = 0.5) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Boxes for pool photos from one or more ``labels.json`` files (keys relative to the pool
    root), converted to the teacher's convention: each file's ``"box_convention"`` (written by
    ``scripts/box_convention.py`` for a detector's labels) or, without one, the human-box map
    (:class:`BoxConvention` defaults). Where a file gives ``"scores"`` (a detector's labels,
    ``scripts/label_pool.py``), boxes below ``min_score`` are dropped. A photo listed in several
    files takes its boxes from the FIRST file that lists it: put human labels first.

    Returns ``{photo: boxes (K, 4) float32 pixels}`` and one summary per file (name, convention,
    photos, faces) for the log and the model card."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    boxes: dict[str, np.ndarray] = {}
    summary = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        conv = BoxConvention.from_dict(data["box_convention"]) if data.get("box_convention") else BoxConvention()
        added = faces = 0
        for rel, item in data["images"].items():
            if rel in boxes:
                continue
            b = label_boxes(item, min_score)
            boxes[rel] = conv.apply(b)
            added += 1
            faces += len(b)
        summary.append({"file": str(path), "convention": conv.to_dict(), "photos": added, "faces": faces})
        log.info("pool labels %s: %d faces on %d photos (convention %s%s)", path, faces, added, conv.to_dict(),
                 f", score >= {min_score}" if data.get("score_min") is not None else "")
    return boxes, summary


#: the landmark dev set (Caltech WebFaces photos with human points), never trained on
LANDMARK_DEV = Path(__file__).with_name("landmark_dev.txt")


def read_photo_list(path: str | Path) -> frozenset[str]:
    """The pool-relative photo paths of a list file: one a line, ``#`` comments and blank lines skipped."""
    lines = Path(path).read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def held_out_photos() -> frozenset[str]:
    """Pool-relative paths of the photos no training run may use: the landmark dev set
    (:data:`LANDMARK_DEV`, one path a line, ``#`` comments)."""
    return read_photo_list(LANDMARK_DEV)


def read_pool(root: str | Path, labels: str | Path | list | None = None,
              source_weights: dict[str, float] | None = None,
              min_score: float = 0.5) -> tuple[list[str], dict[str, np.ndarray]]:
    """List the pool's photos (paths relative to ``root``) with per-source multiplicities applied,
    and read the boxes of ``labels`` (:func:`read_pool_labels`: one or more labels.json files,
    already in the teacher's convention).

    The photos of :func:`held_out_photos` are left out. The source of a photo is its first path
    component. A weight ``w`` keeps ``floor(w)`` copies of every photo plus one more
    copy of a deterministic ``frac(w)`` share of them."""
    root = Path(root)
    held = held_out_photos()
    files = [f for f in list_images(root) if f not in held]
    weights = DEFAULT_SOURCE_WEIGHTS if source_weights is None else source_weights
    entries: list[str] = []
    for i, rel in enumerate(files):
        w = weights.get(Path(rel).parts[0], 1.0)
        copies = int(w) + (1 if (i * 0.6180339887) % 1.0 < w - int(w) else 0)
        entries.extend([rel] * copies)
    human = read_pool_labels(labels, min_score)[0] if labels else {}
    log.info("pool %s: %d photos -> %d samples per pass (source weights %s); labelled boxes on %d photos; "
             "the %d photos of the landmark dev set are held out", root, len(files), len(entries), weights, len(human), len(held))
    return entries, human


def no_face_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(size, size, 3)`` uint8 BGR image with no face: uniform noise drawn at 1/4 to 3 times
    ``size`` (log-uniform) and resized (coarse grain when enlarged; fine, lower-contrast noise when
    shrunk), the same blurred, or a flat colour; a third of them get painted face masks
    (``paint_masks``, varied style) without faces under them."""
    kind = int(rng.integers(3))
    if kind == 2:
        image = np.full((size, size, 3), rng.integers(0, 256, 3), np.uint8)
    else:
        # Shrunk noise matters: the detector halves a 720x1280 noise image to 360x640, which
        # averages pixels into fine noise of half the contrast. An earlier version's noise was only ever
        # enlarged (1/4 to 1/1 of size), and the student fired on that shrunk noise.
        side = max(1, int(size * np.exp(rng.uniform(np.log(0.25), np.log(3.0)))))
        image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        image = cv2.resize(image, (size, size), interpolation=INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))])
        if kind == 1:
            image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(1.0, 4.0)))
    if rng.random() < 1 / 3:
        n = int(rng.integers(1, 9))
        w = rng.uniform(0.05, 0.3, n) * size
        x, y = rng.uniform(0, 1, n) * (size - w), rng.uniform(0, 1, n) * (size - 1.2 * w)
        image = paint_masks(image, np.stack([x, y, x + w, y + 1.2 * w], 1).astype(np.float32), rng, 1.0, style="varied")
    return image


class PoolDataset(Dataset):
    """Photos of the pool, augmented for online teacher labelling (see module docstring)."""

    def __init__(self, root: str | Path, entries: list[str], human: dict[str, np.ndarray], image_size: int = 480,
                 seed: int = 0, mosaic_prob: float = 0.25, zoom_out_prob: float = 0.15, max_upscale: float = 0.0,
                 mask_prob: float = 0.0, mask_style: str = "plain", negative_prob: float = 0.0,
                 occlude_prob: float = 0.0) -> None:
        if not entries:
            raise ValueError(f"no photos in the pool under {root}")
        self.root, self.entries, self.image_size, self.seed = Path(root), entries, image_size, seed
        self.mosaic_prob, self.zoom_out_prob, self.max_upscale = mosaic_prob, zoom_out_prob, max_upscale
        self.mask_prob, self.mask_style, self.negative_prob = mask_prob, mask_style, negative_prob
        self.occlude_prob = occlude_prob
        self.human = human  # already in the teacher's convention (read_pool_labels)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.entries)

    def _load(self, index: int, rng: np.random.Generator) -> Sample:
        rel = self.entries[index]
        try:
            image = read_image(self.root / rel)
        except ValueError as exc:  # an unreadable photo becomes a blank negative, not a crash
            log.warning("pool: %s", exc)
            image = np.full((self.image_size, self.image_size, 3), MEAN_BGR, np.uint8)
        boxes = self.human.get(rel, np.zeros((0, 4), np.float32))
        if self.mask_prob > 0:  # no draws at 0: the samples stay those of runs before the option
            image = paint_masks(image, boxes, rng, self.mask_prob, style=self.mask_style)
        if self.occlude_prob > 0:  # after the masks: a hand may cover a masked face too
            image = occlude_faces(image, boxes, rng, self.occlude_prob)
        return Sample(image, boxes.copy(), np.zeros((len(boxes), 5, 2), np.float32), np.zeros(len(boxes), bool))

    def _view(self, s: Sample, side_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One square view of ``s`` resized to ``side_out``: random crop or zoom-out. Returns the
        uint8 image and the boxes in its pixels (faces whose centre left the view are dropped)."""
        h, w = s.image.shape[:2]
        if rng.random() < self.zoom_out_prob:
            side = int(max(h, w) * rng.uniform(1.0, 2.5))  # whole photo on a larger canvas
            left, top = int(rng.integers(side - w + 1)), int(rng.integers(side - h + 1))
            img, boxes = mean_window(s.image, -left, -top, side), s.boxes + np.array([left, top, left, top], np.float32)
        else:
            side = max(1, int(rng.choice(CROP_SCALES) * min(h, w)))
            if self.max_upscale > 0:
                # A crop smaller than side_out / max_upscale would be magnified more than that: take a
                # larger window instead; where it is larger than the photo, the rest is mean colour.
                side = max(side, math.ceil(side_out / self.max_upscale))
            # The window lies inside the photo where it fits, else the photo lies inside the window
            # (the same draws as before the cap existed when it fits: integers(0, n) == integers(n)).
            left = int(rng.integers(min(0, w - side), max(0, w - side) + 1))
            top = int(rng.integers(min(0, h - side), max(0, h - side) + 1))
            img = mean_window(s.image, left, top, side)
            boxes = s.boxes - np.array([left, top, left, top], np.float32)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            boxes = np.clip(boxes[((centres > 0) & (centres < side)).all(axis=1)], 0, side)
        interp = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]
        img = cv2.resize(img, (side_out, side_out), interpolation=interp)
        return img, boxes * (side_out / side)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        size = self.image_size
        # no draw at 0: the samples stay those of runs before the option
        if self.negative_prob > 0 and rng.random() < self.negative_prob:
            image, boxes = no_face_image(size, rng), np.zeros((0, 4), np.float32)
        elif rng.random() < self.mosaic_prob:
            half = size // 2
            image = np.empty((size, size, 3), np.uint8)
            parts = []
            others = rng.integers(len(self.entries), size=3)
            for k, idx in enumerate([index, *others.tolist()]):
                img, boxes = self._view(self._load(int(idx), rng), half, rng)
                oy, ox = (k // 2) * half, (k % 2) * half
                image[oy:oy + half, ox:ox + half] = img
                parts.append(boxes + np.array([ox, oy, ox, oy], np.float32))
            boxes = np.concatenate(parts)
        else:
            image, boxes = self._view(self._load(index, rng), size, rng)
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
