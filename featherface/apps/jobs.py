"""The jobs a batch run does (:mod:`featherface.apps.batch`): detect, anonymise, crop.

Each job turns an image (or a video frame) into a record and output images; the record's ``faces``
hold boxes x1, y1, x2, y2 and landmarks in pixels of the original image.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..core.align import align_face, crop_face
from ..core.anonymize import anonymize, anonymize_passes, check_mask_options
from ..core.detector import FaceDetector
from ..core.drawing import draw_detections
from ..core.errors import InputError, UsageError
from ..core.geometry import iou_matrix
from ..core.imageops import resize, to_gray
from ..core.postprocess import Detections
from ..core.settings import ANONYMIZE


@lru_cache(maxsize=8)
def file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def detector_settings(det: Any, model: str) -> dict:
    """Every detector setting that shapes results (compared when a run is resumed). A runner of
    another detector's graph (``crop --landmarks-model``: a ``path``, a ``name`` and its authors'
    ``input_rule``) gives its file and input rule."""
    if not hasattr(det, "cfg"):  # a peer runner, not a FaceDetector
        return {"model": model, "model_sha256": file_sha256(str(det.path)), "engine": type(det).__name__,
                "input": det.input_rule}
    source = getattr(det.runner, "source", None)
    return {"model": model, "model_sha256": file_sha256(str(source)) if source else None, "arch": det.arch,
            "engine": type(det.runner).__name__, "score_threshold": det.cfg.score_threshold, "nms_iou": det.cfg.nms_iou,
            "box_voting": det.cfg.box_voting, "top_k": det.cfg.top_k, "keep_top_k": det.cfg.keep_top_k,
            "refine_landmarks": det.refine_landmarks,
            "long_side": det.long_side, "coordinates": "original-image pixels; boxes x1,y1,x2,y2",
            "landmarks": ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]}


def faces_record(d: Detections) -> list[dict]:
    return [f.to_dict() for f in d.to_list()]


@dataclass
class DetectJob:
    """Detections, and annotated copies (boxes, scores, landmarks drawn)."""

    detector: FaceDetector
    model: str
    kind: str = "detect"
    settings: dict = field(init=False)

    def __post_init__(self) -> None:
        self.settings = detector_settings(self.detector, self.model)

    def image(self, image: np.ndarray):
        d = self.detector.detect_arrays(image)
        return {"faces": faces_record(d)}, [("", draw_detections(image, d.to_list()))]

    def detect(self, frame: np.ndarray) -> Detections:
        return self.detector.detect_arrays(frame)

    def frame(self, frame: np.ndarray, index: int, detections: Detections | None = None):
        d = self.detect(frame) if detections is None else detections
        return {"faces": faces_record(d)}, draw_detections(frame, d.to_list())


class FaceTracks:
    """Keeps a face masked through short misses in a video: a face detected in ``min_hits``
    frames running or more that no current detection overlaps (IoU >= ``iou``) is masked again,
    at its last box, for up to ``hold`` frames. A one-frame detection is not held: most of those
    are false positives, and holding them would multiply their masks. Detections are what they
    are; only the mask carries over."""

    def __init__(self, hold: int, iou: float = 0.3, min_hits: int = 2) -> None:
        self.hold, self.iou, self.min_hits = hold, iou, min_hits
        self.tracks: list[tuple[np.ndarray, int, int]] = []  # (box, frames since last seen, frames seen)

    def update(self, boxes: np.ndarray) -> np.ndarray:
        """The boxes to mask in this frame: the detections plus the held ones."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        hits = np.ones(len(boxes), int)
        held = []
        survivors = []
        if self.tracks:
            old = np.stack([b for b, _, _ in self.tracks])
            overlap = iou_matrix(old, boxes) >= self.iou if len(boxes) else np.zeros((len(old), 0), bool)
            for (b, age, seen), row in zip(self.tracks, overlap):
                if row.any():  # seen again: its detections carry its count on
                    hits[row] = np.maximum(hits[row], seen + 1)
                elif seen >= self.min_hits and age + 1 <= self.hold:
                    held.append(b)
                    survivors.append((b, age + 1, seen))
        self.tracks = [(b, 0, int(n)) for b, n in zip(boxes, hits)] + survivors
        return np.concatenate([boxes, np.asarray(held).reshape(-1, 4)]) if held else boxes


#: mean absolute difference (0-255) of two consecutive 32x32 grey thumbnails above which a video
#: cuts to another shot: faces held from the previous shot would mask the wrong places
SCENE_CUT = 40.0


def scene_thumbnail(frame: np.ndarray) -> np.ndarray:
    return resize(to_gray(frame), (32, 32), "area").astype(np.float32)


def scene_cut(previous: np.ndarray | None, current: np.ndarray) -> bool:
    return previous is not None and float(np.abs(previous - current).mean()) > SCENE_CUT


@dataclass
class AnonymizeJob:
    """Faces masked (blur, pixelate or solid), the masked boxes recorded."""

    detector: FaceDetector
    model: str
    mode: str = ANONYMIZE.mode
    shape: str = ANONYMIZE.shape
    pad: float = ANONYMIZE.pad
    color: tuple[int, int, int] = ANONYMIZE.color
    hold: int = ANONYMIZE.hold
    #: a second detection pass for small faces the first pass misses: a long side, ``"full"`` (the
    #: image's own size, for large images: :func:`anonymize_passes`), or None
    second_pass: int | str | None = ANONYMIZE.second_pass
    #: also detect on the mirrored image
    flip: bool = ANONYMIZE.flip
    #: the faces masked: recall first, as the command line and ``anonymize(image)``; None: the
    #: detector's own threshold (0.65 for the bundled Nano, which leaves many more faces visible)
    score_threshold: float | None = ANONYMIZE.score_threshold
    kind: str = "anonymize"
    settings: dict = field(init=False)

    def __post_init__(self) -> None:
        check_mask_options(self.mode, self.shape, self.pad, color=self.color)
        if self.score_threshold is not None and not 0.0 <= self.score_threshold <= 1.0:
            raise UsageError(f"score_threshold must be in [0, 1] or None, got {self.score_threshold}")
        if self.hold < 0:
            raise UsageError(f"hold must be >= 0, got {self.hold}")
        if not (self.second_pass in (None, "full") or (isinstance(self.second_pass, int) and self.second_pass >= 32)):
            raise UsageError(f"second_pass must be 'full', None or a long side >= 32, got {self.second_pass!r}")
        self.settings = {**detector_settings(self.detector, self.model), "mode": self.mode, "shape": self.shape,
                         "pad": self.pad, "color": list(self.color), "hold_frames": self.hold,
                         "second_pass": self.second_pass, "flip": self.flip}
        if self.score_threshold is not None:
            self.settings["score_threshold"] = self.score_threshold
        self._tracks = FaceTracks(self.hold)
        self._thumb: np.ndarray | None = None

    def detect(self, image: np.ndarray) -> Detections:
        sides = anonymize_passes(image.shape[:2], self.detector.long_side, self.second_pass)
        if self.score_threshold is None:
            return self.detector.detect_passes(image, sides, flip=self.flip)
        return self.detector.detect_passes(image, sides, flip=self.flip, score_threshold=self.score_threshold)

    def _mask(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return anonymize(image, boxes, mode=self.mode, shape=self.shape, pad=self.pad, color=self.color)

    def image(self, image: np.ndarray):
        d = self.detect(image)
        return {"faces": faces_record(d)}, [("", self._mask(image, d.boxes))]

    def frame(self, frame: np.ndarray, index: int, detections: Detections | None = None):
        thumb = scene_thumbnail(frame)
        if index == 0 or scene_cut(self._thumb, thumb):
            self._tracks = FaceTracks(self.hold)  # a new video or a new shot: nothing to hold from before
        self._thumb = thumb
        d = self.detect(frame) if detections is None else detections
        boxes = self._tracks.update(d.boxes)
        held = boxes[len(d):]
        return ({"faces": faces_record(d), "held": [[round(float(v), 2) for v in b] for b in held]},
                self._mask(frame, boxes))


@dataclass
class CropJob:
    """One crop per face: aligned to the ArcFace template (``align``), or plain with a margin."""

    detector: FaceDetector
    model: str
    align: bool = True
    size: int = 112
    margin: float = 0.2
    #: a second detector whose landmarks align the faces (a more precise one: alignment is only as
    #: good as the landmarks); each face takes the landmarks of its box's match (IoU >= 0.5) there
    landmark_detector: FaceDetector | None = None
    landmark_model: str | None = None
    kind: str = "crop"
    settings: dict = field(init=False)

    def __post_init__(self) -> None:
        self.settings = {**detector_settings(self.detector, self.model), "align": self.align, "size": self.size,
                         "margin": self.margin}
        if self.landmark_detector is not None:
            self.settings["landmarks_from"] = detector_settings(self.landmark_detector, self.landmark_model or "?")

    def _landmarks(self, image: np.ndarray, d: Detections) -> tuple[Detections, list[bool]]:
        """``d`` with each face's landmarks taken from the landmark detector's matching face (IoU >=
        0.5, at a low threshold so faint matches count), and which faces got them."""
        if self.landmark_detector is None or not len(d):
            return d, [False] * len(d)
        other = self.landmark_detector.detect_arrays(image, score_threshold=0.1)
        landmarks = d.landmarks.copy()
        taken = [False] * len(d)
        if len(other):
            iou = iou_matrix(d.boxes, other.boxes)
            for i, j in enumerate(iou.argmax(axis=1)):
                if iou[i, j] >= 0.5 and np.isfinite(other.landmarks[j]).all():
                    landmarks[i], taken[i] = other.landmarks[j], True
        return Detections(d.boxes, d.scores, landmarks), taken

    def image(self, image: np.ndarray):
        d, taken = self._landmarks(image, self.detector.detect_arrays(image))
        crops = []
        for i, (box, lm) in enumerate(zip(d.boxes, d.landmarks)):
            crop = align_face(image, lm, self.size) if self.align else crop_face(image, box, self.margin)
            crops.append((f"_face{i}.png", crop))
        record = {"faces": faces_record(d)}
        if self.landmark_detector is not None:
            for face, t in zip(record["faces"], taken):
                face["landmarks_from"] = self.landmark_model if t else self.model
        return record, crops

    def frame(self, frame: np.ndarray, index: int, detections: Detections | None = None):
        raise InputError("crop works on images, not videos")
