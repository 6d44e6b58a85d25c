"""``FaceDetector``: load a model once, detect faces in one image or a list of images.

    >>> det = FaceDetector.from_pretrained("nano")          # or "nano-int8", "model.onnx", "v1.pt"
    >>> faces = det.detect(cv2.imread("photo.jpg"))          # list[Detection], [] if none
    >>> arrays = det.detect_arrays(img)                      # boxes (N,4), scores (N,), landmarks (N,5,2)

Images are ``H x W x 3`` uint8 arrays, BGR by default (as OpenCV reads them); pass
``color="rgb"`` otherwise. Boxes and landmarks are in pixels of the ORIGINAL image.
Resize policy: ``long_side=640`` (default) resizes so that the longer side is 640 pixels,
``long_side=None`` runs at the original size. Images of different sizes can be mixed in one
call: they are grouped by network input size, and each group runs as one batch, so a list gives
exactly the detections of one-by-one calls.
Post-processing: greedy NMS at ``nms_iou`` followed by box voting (``box_voting=False``: greedy
NMS alone, as in the released FeatherFace / RetinaFace code); see :mod:`featherface.postprocess`.
Landmarks: each face's five points are read again in a second look where the face is 96 px
(:mod:`featherface.core.refine`; ``refine_landmarks=False``: the first look's points, faster).
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence, overload

import numpy as np

from .constants import MEAN_BGR, MIRROR_ORDER
from .errors import InputError, UsageError
from .files import read_image
from .imageops import resize_linear
from .postprocess import Detection, Detections, PostProcessConfig, nms, postprocess_image
from .refine import refine_landmarks as second_look
from .runners import OnnxRunner, OpenVinoRunner, Runner, require
from .settings import DETECTOR, FALLBACK_SCORE_THRESHOLD, MAX_LONG_SIDE, PASSES
from .weights import resolve_weights

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "openvino")
DEFAULT = object()  # sentinel: "use the detector's default" for per-call arguments


def long_side_size(h: int, w: int, long_side: int | None) -> tuple[int, int]:
    """``(height, width)`` after resizing an ``h x w`` image so its long side is ``long_side``
    (``None``/0: unchanged)."""
    if not long_side:
        return h, w
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def resize_long_side(image: np.ndarray, long_side: int | None) -> tuple[np.ndarray, tuple[float, float]]:
    """Resize (bilinear) so the long side is ``long_side`` pixels (``None``/0: unchanged); returns
    the image and ``(sx, sy)`` mapping its pixels back to the original's. The one resize rule of
    the detector and of the human-label evaluation protocol."""
    h, w = image.shape[:2]
    nh, nw = long_side_size(h, w, long_side)
    if (nh, nw) != (h, w):
        image = resize_linear(image, (nw, nh))
    return image, (w / nw, h / nh)


def preprocess(image: np.ndarray | str | os.PathLike, color: str = "bgr", long_side: int | None = 640,
               mean: tuple[float, float, float] = MEAN_BGR, model_color: str = "bgr") -> tuple[np.ndarray, tuple[float, float]]:
    """Validate, convert to the model's colour order, resize, subtract the model's mean (given in
    the model's colour order). Returns ``(CHW float32, (sx, sy))`` where ``(sx, sy)`` maps
    network-input pixels back to original pixels."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image)  # a file path: read as BGR (color must then be "bgr")
        color = "bgr"
    if image is None:
        raise TypeError("image is None: cv2.imread returns None for a missing or unreadable file; check the path "
                        "(featherface.files.read_image raises an error naming the file instead)")
    if not isinstance(image, np.ndarray):
        hint = " (a PIL image: pass np.asarray(img) and color='rgb')" if hasattr(image, "getbands") else ""
        raise TypeError(f"image must be a numpy array (H x W x 3 uint8), got {type(image).__name__}{hint}")
    if image.ndim == 3 and image.shape[2] == 1:  # H x W x 1 grayscale
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"image must be HxWx3 (or HxWx4 / HxW), got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image is empty: shape {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8, got {image.dtype}")
    color = color.lower()
    if color not in ("bgr", "rgb"):
        raise UsageError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if long_side is not None and not 32 <= long_side <= MAX_LONG_SIDE:
        raise UsageError(f"long_side must be in [32, {MAX_LONG_SIDE}] or None, got {long_side}")
    image, scale = resize_long_side(image, long_side)
    # HWC -> CHW float32 minus the mean (given in the model's channel order), channels swapped
    # when the image's order is not the model's; one strided pass per channel (several times
    # faster than casting the transposed array)
    x = np.empty((3, *image.shape[:2]), np.float32)
    order = (2, 1, 0) if color != model_color else (0, 1, 2)
    for k, src in enumerate(order):
        np.subtract(image[:, :, src], np.float32(mean[k]), out=x[k], dtype=np.float32)
    return x, scale




class FaceDetector:
    """Face detector with explicit thresholds and resize policy (see module docstring)."""

    def __init__(
        self,
        runner: Runner,
        *,
        arch: str | None = None,
        score_threshold: float = FALLBACK_SCORE_THRESHOLD,
        nms_iou: float = DETECTOR.nms_iou,
        top_k: int = DETECTOR.top_k,
        keep_top_k: int = DETECTOR.keep_top_k,
        box_voting: bool = DETECTOR.box_voting,
        long_side: int | None = DETECTOR.long_side,
        refine_landmarks: bool = DETECTOR.refine_landmarks,
        max_batch: int = 8,
        contract: dict | None = None,
    ) -> None:
        self.runner = runner
        # input contract of the weights (colour order, mean), read from the checkpoint
        self.contract = contract or {"color": "bgr", "mean": MEAN_BGR}
        self.arch = arch or getattr(runner, "arch", "?")
        self.cfg = PostProcessConfig(score_threshold, nms_iou, top_k, keep_top_k, box_voting)
        self.long_side = long_side
        self.refine_landmarks = refine_landmarks
        self.max_batch = max_batch

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "nano", *, backend: str | None = None, device: str = "cpu",
                        num_threads: int | None = None, **kwargs) -> "FaceDetector":
        """Build from a bundled name (``"nano"``, ``"nano-int8"``, ``"v1"``), an ``.onnx`` graph, a
        FeatherFace checkpoint (``.pt``) or a released V1 / RetinaFace-MobileNet0.25 state_dict.

        ``backend``: ``"onnxruntime"``, ``"openvino"`` or ``"torch"``; ``None`` runs graphs (and the
        bundled names) on onnxruntime and checkpoints on PyTorch. A checkpoint asked for with a graph
        engine is exported in memory first (``[torch]`` extra). ``score_threshold`` defaults to the
        weights' recommended value when they state one (the bundled Nano does), else 0.5.
        """
        if backend is not None and backend not in BACKENDS:
            raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if num_threads is not None and num_threads < 1:
            raise UsageError(f"num_threads must be >= 1 or None, got {num_threads}")
        path = resolve_weights(name_or_path, torch_backend=backend == "torch")
        runner: Runner
        if path.suffix.lower() == ".onnx":
            if backend == "torch":
                raise UsageError(f"{path}: an ONNX graph runs on onnxruntime or openvino, not torch")
            runner = (OpenVinoRunner(path, num_threads=num_threads) if backend == "openvino"
                      else OnnxRunner(path, num_threads=num_threads, device=device))
        else:
            # a checkpoint: the torch side loads it (and exports it in memory for a graph engine)
            require("torch", "torch")
            from ..export.torch_runner import runner_from_checkpoint

            runner = runner_from_checkpoint(path, backend or "torch", device=device, num_threads=num_threads)
        kwargs.setdefault("contract", runner.contract)
        if kwargs.get("score_threshold") is None:
            kwargs["score_threshold"] = FALLBACK_SCORE_THRESHOLD if runner.score_threshold is None else runner.score_threshold
        return cls(runner, arch=runner.arch, **kwargs)

    def _config(self, score_threshold, nms_iou, top_k, keep_top_k) -> PostProcessConfig:
        c = self.cfg
        pick = lambda v, d: d if v is DEFAULT else v
        return PostProcessConfig(pick(score_threshold, c.score_threshold), pick(nms_iou, c.nms_iou),
                                 pick(top_k, c.top_k), pick(keep_top_k, c.keep_top_k), c.box_voting)

    @overload
    def detect_arrays(self, images: list | tuple, *, color: str = ..., long_side: Any = ..., score_threshold: Any = ...,
                      nms_iou: Any = ..., top_k: Any = ..., keep_top_k: Any = ...,
                      refine_landmarks: Any = ...) -> list[Detections]: ...

    @overload
    def detect_arrays(self, images: np.ndarray | str | os.PathLike, *, color: str = ..., long_side: Any = ...,
                      score_threshold: Any = ..., nms_iou: Any = ..., top_k: Any = ..., keep_top_k: Any = ...,
                      refine_landmarks: Any = ...) -> Detections: ...

    def detect_arrays(self, images, *, color: str = "bgr", long_side=DEFAULT, score_threshold=DEFAULT,
                      nms_iou=DEFAULT, top_k=DEFAULT, keep_top_k=DEFAULT,
                      refine_landmarks=DEFAULT) -> Detections | list[Detections]:
        """Like :meth:`detect` but returns :class:`Detections` arrays."""
        # one image: an array, or anything that is not a list/tuple (None, a PIL image...), which
        # preprocess then rejects with a message saying what to pass instead
        single = not isinstance(images, (list, tuple))
        # file paths are read once, as BGR, for the first look and the second
        batch = [(read_image(img), "bgr") if isinstance(img, (str, os.PathLike)) else (img, color)
                 for img in ([images] if single else images)]
        cfg = self._config(score_threshold, nms_iou, top_k, keep_top_k)
        ls = self.long_side if long_side is DEFAULT else long_side
        mean, model_color = self.contract["mean"], self.contract["color"]
        prepared = [preprocess(img, c, ls, mean, model_color) for img, c in batch]
        results: list[Detections | None] = [None] * len(batch)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (x, _) in enumerate(prepared):
            groups[x.shape[1:]].append(i)
        for hw, idxs in groups.items():
            for start in range(0, len(idxs), self.max_batch):
                chunk = idxs[start:start + self.max_batch]
                # one image: a view with a batch axis, not a copy
                x = prepared[chunk[0]][0][None] if len(chunk) == 1 else np.stack([prepared[i][0] for i in chunk])
                outputs = self.runner(x)
                for j, i in enumerate(chunk):
                    results[i] = postprocess_image(outputs.image(j), hw, prepared[i][1], cfg)
        if self.refine_landmarks if refine_landmarks is DEFAULT else refine_landmarks:
            for i, (img, c) in enumerate(batch):
                results[i] = self._second_look(img, results[i], c, nms_iou)  # type: ignore[arg-type]
        return results[0] if single else results  # type: ignore[return-value]

    def _second_look(self, image: np.ndarray, found: Detections, color: str, nms_iou: Any = DEFAULT) -> Detections:
        """``found`` with landmarks from :func:`featherface.core.refine.refine_landmarks`."""
        def look(crops: list[np.ndarray], side: int, threshold: float) -> list[Detections]:
            return self.detect_arrays(crops, color=color, long_side=side, score_threshold=threshold, nms_iou=nms_iou,
                                      refine_landmarks=False)

        return second_look(image, found, look)

    def detect_passes(self, image: np.ndarray, long_sides: Sequence[int | None], *, flip: bool = False,
                      color: str = "bgr", score_threshold=DEFAULT) -> Detections:
        """One image detected at several sizes (``long_sides``; ``None``: the image's own), and with
        ``flip`` also mirrored, merged: every pass's faces, then NMS at the detector's IoU (the
        highest-scoring box of each face wins). For recall first, as anonymisation needs: a 12 px
        face that the 640 px pass misses is 24 px at 1280.

        Two rules keep large images right. ``top_k`` and ``keep_top_k`` grow with a pass's input
        area beyond 640x640 (a crowd in a 4K frame holds more than 750 faces). A pass keeps only
        faces of ``PASSES.coarse_min_face`` px or more at its own scale when another pass runs at
        ``PASSES.finer_pass`` times its resolution or more (:data:`featherface.core.settings.PASSES`): below that size its guesses are what the
        finer pass sees properly, and scaled up they would mask large stretches of background."""
        if isinstance(image, (str, os.PathLike)):
            image, color = read_image(image), "bgr"
        h, w = image.shape[:2]
        found = []
        for ls, top_k, keep_top_k, min_face in self.pass_plan((h, w), long_sides):
            caps = {"top_k": top_k, "keep_top_k": keep_top_k}
            for mirrored in (False, True) if flip else (False,):
                src = np.ascontiguousarray(image[:, ::-1]) if mirrored else image
                d = self.detect_arrays(src, color=color, long_side=ls, score_threshold=score_threshold,
                                       refine_landmarks=False, **caps)
                if mirrored:
                    boxes = np.stack([w - d.boxes[:, 2], d.boxes[:, 1], w - d.boxes[:, 0], d.boxes[:, 3]], axis=1)
                    # mirrored landmarks: x flipped, and left/right swapped (eyes, mouth corners)
                    lm = d.landmarks[:, list(MIRROR_ORDER)].copy()
                    lm[..., 0] = w - lm[..., 0]
                    d = Detections(boxes.astype(np.float32), d.scores, lm)
                if min_face:
                    big = d.boxes[:, 2] - d.boxes[:, 0] >= min_face
                    d = Detections(d.boxes[big], d.scores[big], d.landmarks[big])
                found.append(d)
        if len(found) == 1:
            return found[0]
        boxes = np.concatenate([d.boxes for d in found])
        scores = np.concatenate([d.scores for d in found])
        landmarks = np.concatenate([d.landmarks for d in found])
        keep = nms(boxes, scores, self.cfg.nms_iou)
        return Detections(boxes[keep], scores[keep], landmarks[keep])

    def pass_plan(self, image_hw: tuple[int, int], long_sides: Sequence[int | None]) -> list[tuple[int | None, int, int, float]]:
        """Per pass of :meth:`detect_passes`: ``(long_side, top_k, keep_top_k, min_face)``, the
        candidate caps grown with the pass's area beyond ``PASSES.pass_area`` and the smallest face
        width (original pixels) the pass keeps: ``coarse_min_face`` at its own scale when another
        pass runs at ``finer_pass`` times its resolution or more, else 0. The page's ``passPlan``
        is this function (checked under Node)."""
        h, w = image_hw
        scales = [1.0 if ls is None else ls / max(h, w) for ls in long_sides]
        plan = []
        for ls, scale in zip(long_sides, scales):
            grow = max(1.0, h * w * scale * scale / PASSES.pass_area)
            coarse = max(scales) >= PASSES.finer_pass * scale
            plan.append((ls, int(self.cfg.top_k * grow), int(self.cfg.keep_top_k * grow),
                         PASSES.coarse_min_face / scale if coarse else 0.0))
        return plan

    def detect(self, images, **kwargs) -> list[Detection] | list[list[Detection]]:
        """Detect faces in one image (an array, or a file path; returns ``list[Detection]``) or a
        list of them (returns one list per image). No faces gives ``[]``. Keyword arguments (``color``, ``long_side``,
        ``score_threshold``, ``nms_iou``, ``top_k``, ``keep_top_k``, ``refine_landmarks``) override the
        defaults for this call."""
        out = self.detect_arrays(images, **kwargs)
        return out.to_list() if isinstance(out, Detections) else [d.to_list() for d in out]
