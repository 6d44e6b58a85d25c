"""Raw network outputs -> detections in original-image pixels.

Numpy only. Order of operations (cheap first): scores -> threshold -> top-k -> decode only the kept
anchors -> NMS -> keep-top-k -> box voting -> rescale to original pixels. NMS is OpenCV's greedy
C++ implementation (no torchvision); boxes are continuous coordinates (no "+1" pixel convention).

Box voting (on by default, ``PostProcessConfig(box_voting=False)`` gives plain greedy NMS, the
released RetinaFace / FeatherFace code's behaviour): each detection NMS keeps takes the
score-weighted mean box and landmarks of the candidates it overlaps with IoU > ``nms_iou`` (itself
and, mostly, those it suppressed); its score is unchanged, so the ranking and the number of detections
are those of greedy NMS. Measured before it was made the default, on 400 human-labelled TRAINING
photos (groupselfies part of the pool; VOC AP at IoU 0.5, long side 640): Nano 0.883 -> 0.891,
V1 0.898 -> 0.905, RetinaFace-MobileNet0.25 0.893 -> 0.898; the vote IoU was chosen there (0.4, 0.5
and 0.6 were tried; 0.4 = the NMS IoU was best or level for all three). Voted landmarks: no
landmark labels exist here; on 150 pool photos Nano's landmarks moved closer to V1's (mean
distance / face size 0.092 -> 0.089).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .constants import LANDMARK_NAMES
from .geometry import iou_matrix
from .priors import decode_boxes, decode_landmarks, pixel_priors
from .errors import UsageError
from .settings import DETECTOR, FALLBACK_SCORE_THRESHOLD


class RawOutputs(NamedTuple):
    """A network's raw outputs, float32 numpy: ``loc (N, A, 4)`` box regressions, ``conf (N, A, 2)``
    class logits (index 1 = face), ``landmark_deltas (N, A, 10)`` landmark regressions. Indexing
    one image (``RawOutputs(*(o[i] for o in out))``) drops the batch dimension."""

    loc: np.ndarray
    conf: np.ndarray
    landmark_deltas: np.ndarray

    def image(self, i: int) -> "RawOutputs":
        return RawOutputs(self.loc[i], self.conf[i], self.landmark_deltas[i])


class DecodedOutputs(NamedTuple):
    """Outputs of a graph exported with decoding inside: ``boxes (N, A, 4)`` x1, y1, x2, y2 and
    ``landmarks (N, A, 10)`` in network-input pixels, ``scores (N, A)`` face probabilities."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def image(self, i: int) -> "DecodedOutputs":
        return DecodedOutputs(self.boxes[i], self.scores[i], self.landmarks[i])


@dataclass(frozen=True)
class Detection:
    """One face. ``box`` is ``(x1, y1, x2, y2)`` float pixels in the ORIGINAL image, ``landmarks``
    is ``(5, 2)`` ``(x, y)`` in :data:`LANDMARK_NAMES` order (left = image left)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 5),
            "landmarks": {n: [round(float(x), 2), round(float(y), 2)] for n, (x, y) in zip(LANDMARK_NAMES, self.landmarks)},
        }


@dataclass(frozen=True)
class Detections:
    """Array form of one image's detections, sorted by decreasing score:
    ``boxes (N, 4)``, ``scores (N,)``, ``landmarks (N, 5, 2)``, all float32 pixels."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def to_list(self) -> list[Detection]:
        return [Detection(b, float(s), l) for b, s, l in zip(self.boxes, self.scores, self.landmarks)]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression. ``boxes (N, 4)`` xyxy, ``scores (N,)``; returns kept
    indices in decreasing score order (ties: the lower index first). A box is suppressed when its
    IoU with a kept, higher-scoring box exceeds ``iou_threshold``."""
    if len(boxes) == 0:
        return np.zeros((0,), dtype=np.int64)
    b = np.asarray(boxes, dtype=np.float64)
    area = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0])
        ih = np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1])
        inter = np.maximum(iw, 0) * np.maximum(ih, 0)
        union = area[i] + area[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class PostProcessConfig:
    """Thresholds; defaults from :data:`featherface.core.settings.DETECTOR`. WIDER FACE
    evaluation uses ``score_threshold=0.02, top_k=5000, nms_iou=0.4, keep_top_k=750``."""

    score_threshold: float = FALLBACK_SCORE_THRESHOLD
    nms_iou: float = DETECTOR.nms_iou
    top_k: int = DETECTOR.top_k  # candidates kept (by score) before NMS
    keep_top_k: int = DETECTOR.keep_top_k  # detections kept after NMS
    box_voting: bool = DETECTOR.box_voting  # kept boxes/landmarks = score-weighted mean of the boxes they overlap

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise UsageError(f"score_threshold must be in [0, 1], got {self.score_threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise UsageError(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if self.top_k < 1 or self.keep_top_k < 1:
            raise UsageError("top_k and keep_top_k must be >= 1")


#: kept boxes voted at once (bounds box_vote's memory to VOTE_BLOCK x candidates)
VOTE_BLOCK = 256


def box_vote(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, keep: np.ndarray, iou_threshold: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Box voting after NMS. ``boxes (N, 4)`` xyxy, ``scores (N,)``, ``landmarks (N, 5, 2)`` are
    all candidates, ``keep (K,)`` the indices NMS kept. Returns ``(boxes (K, 4), landmarks
    (K, 5, 2))``: for each kept box, the mean of the candidates whose IoU with it exceeds
    ``iou_threshold`` (always including itself), weighted by their scores."""
    s64 = np.asarray(scores, np.float64)
    values = np.concatenate([boxes.reshape(len(boxes), 4), landmarks.reshape(len(boxes), -1)], axis=1).astype(np.float64)
    voted = np.empty((len(keep), values.shape[1]))
    # in blocks of kept boxes: a (K, N) matrix of a crowded 4K frame would take gigabytes. The
    # weighted means are sums over the few overlapping candidates (reduceat), not a matrix product:
    # `@` goes to OpenBLAS, whose threaded gemm can deadlock when two detector threads call it at
    # once (numpy/numpy#17752)
    for start in range(0, len(keep), VOTE_BLOCK):
        k = keep[start:start + VOTE_BLOCK]
        overlap = iou_matrix(boxes[k], boxes) > iou_threshold  # (block, N)
        overlap[np.arange(len(k)), k] = True  # itself, even for a degenerate (zero-area) box
        rows, cols = np.nonzero(overlap)  # row-major: each row's candidates together, every row present
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        w = s64[cols]
        sums = np.add.reduceat(w[:, None] * values[cols], first, axis=0)
        voted[start:start + len(k)] = sums / np.maximum(np.add.reduceat(w, first), 1e-12)[:, None]
    voted_boxes, voted_landmarks = voted[:, :4], voted[:, 4:]
    return voted_boxes.astype(np.float32), voted_landmarks.reshape(-1, *landmarks.shape[1:]).astype(np.float32)


def face_scores(conf: np.ndarray) -> np.ndarray:
    """Face probability (softmax of the two class logits, index 1) of ``conf (A, 2)``, float32."""
    c = conf.astype(np.float32, copy=False)
    return 1.0 / (1.0 + np.exp(c[:, 0] - c[:, 1]))


def postprocess_image(outputs: RawOutputs | DecodedOutputs, input_hw: tuple[int, int],
                      scale_xy: tuple[float, float] = (1.0, 1.0), cfg: PostProcessConfig = PostProcessConfig()
                      ) -> Detections:
    """Post-process ONE image's outputs (the batch dimension already removed).

    Args:
        outputs: :class:`RawOutputs` ``loc (A, 4)``, ``conf (A, 2)``, ``landmark_deltas (A, 10)``,
            or :class:`DecodedOutputs` (boxes, probabilities and landmarks in network-input
            pixels, from a graph exported with decoding inside).
        input_hw: the network input size ``(H, W)`` the anchors belong to.
        scale_xy: factors from network-input pixels to original pixels, ``(sx, sy)``.
    """
    h, w = input_hw
    scores = (outputs.scores.reshape(-1).astype(np.float32) if isinstance(outputs, DecodedOutputs)
              else face_scores(outputs.conf))
    idx = np.flatnonzero(scores > cfg.score_threshold)
    if len(idx) > cfg.top_k:
        idx = idx[np.argpartition(-scores[idx], cfg.top_k - 1)[: cfg.top_k]]
    if len(idx) == 0:
        return Detections()
    s = scores[idx]
    if isinstance(outputs, DecodedOutputs):
        boxes = outputs.boxes[idx].astype(np.float32)
        landmarks = outputs.landmarks[idx].reshape(-1, 5, 2).astype(np.float32)
    else:
        anchors = pixel_priors(h, w)[idx]
        boxes = decode_boxes(outputs.loc[idx].astype(np.float32), anchors)
        landmarks = decode_landmarks(outputs.landmark_deltas[idx].astype(np.float32), anchors)
    sx, sy = scale_xy
    boxes = boxes * np.array([sx, sy, sx, sy], np.float32)
    # Boxes stay inside the image (a face at the border may regress past it); landmarks are
    # left as predicted (a point can legitimately be estimated just outside).
    np.clip(boxes, 0.0, [w * sx, h * sy, w * sx, h * sy], out=boxes)
    landmarks = landmarks * np.array([sx, sy], np.float32)
    keep = nms(boxes, s, cfg.nms_iou)[: cfg.keep_top_k]
    if cfg.box_voting and len(keep):
        kept_boxes, kept_landmarks = box_vote(boxes, s, landmarks, keep, cfg.nms_iou)
    else:
        kept_boxes, kept_landmarks = boxes[keep].astype(np.float32), landmarks[keep].astype(np.float32)
    return Detections(kept_boxes, s[keep].astype(np.float32), kept_landmarks)
