"""Runners for other detectors' released model files, each returning our :class:`Detections`.

Every runner takes a BGR ``uint8`` image of any size and returns boxes ``(N, 4)`` x1,y1,x2,y2 and
landmarks ``(N, 5, 2)`` in pixels of that image, scores ``(N,)`` sorted in decreasing order.
Landmarks follow our order (image-left eye, image-right eye, nose, image-left mouth corner,
image-right mouth corner, as in RetinaFace); a model without landmarks returns NaN for them.
The preprocessing, decoding and default thresholds of each runner are those of its authors'
reference demo code, stated in each class's docstring.

These runners are for comparison (``featherface benchmark --peers``); they are not part of the
core detection path.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ..core.postprocess import Detections, nms

log = logging.getLogger(__name__)


def _sorted(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray) -> Detections:
    order = np.argsort(-scores, kind="stable")
    return Detections(boxes[order].astype(np.float32).reshape(-1, 4), scores[order].astype(np.float32),
                      landmarks[order].astype(np.float32).reshape(-1, 5, 2))


def onnx_parameter_count(path: Path) -> int:
    """Number of values stored in an ONNX graph's parameters: its float initializers, and in a
    quantized (QDQ) graph the integer tensors that ``DequantizeLinear`` turns into weights and
    biases (their scales and zero points are not counted). The parameter count as deployed
    (batch-norm usually folded into the convolutions)."""
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(path), load_external_data=False)
    dq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    quant_params = {name for n in dq for name in n.input[1:]}
    quantized = {n.input[0] for n in dq if n.op_type == "DequantizeLinear"}
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)
    return int(sum(np.prod(t.dims, dtype=np.int64) for t in model.graph.initializer
                   if t.name not in quant_params and (t.data_type in floats or t.name in quantized)))


class PeerRunner:
    """Common interface: ``detect_arrays(image, score_threshold=None) -> Detections``,
    ``set_num_threads(n)``, ``name``, ``path``, ``has_landmarks``, ``score_threshold`` (the
    authors' default), ``input_rule`` (how the image is fed to the network)."""

    has_landmarks = True
    score_threshold = 0.5
    nms_iou = 0.4
    input_rule = "?"

    def __init__(self, path: str | Path, num_threads: int | None = None, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"peer model file not found: {self.path}")
        self.num_threads = num_threads
        self._build()

    def _build(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def set_num_threads(self, n: int) -> None:
        """Rebuild the engine with ``n`` intra-op threads."""
        self.num_threads = n
        self._build()

    @property
    def parameters(self) -> int:
        return onnx_parameter_count(self.path)

    def detect_arrays(self, image: np.ndarray, score_threshold: float | None = None) -> Detections:
        raise NotImplementedError  # pragma: no cover


class _OrtRunner(PeerRunner):
    def _build(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # the Ultra-Light graphs list their weights as inputs: warnings only
        if self.num_threads:
            opts.intra_op_num_threads = self.num_threads
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape


class SCRFD(_OrtRunner):
    """SCRFD (Guo et al. 2021, insightface) with keypoints, ``scrfd_*_kps.onnx``.

    Graph: input ``images (1, 3, 640, 640)``; outputs per stride 8/16/32 (2 anchors per cell):
    scores ``(1, HW*2, 1)`` (sigmoid applied), box distances ``(1, HW*2, 4)`` (left, top, right,
    bottom, in units of the stride) and keypoint offsets ``(1, HW*2, 10)``.
    Preprocessing (insightface ``SCRFD.detect``): letterbox the image into 640x640 keeping its
    aspect ratio, padded at the right/bottom with zeros, RGB, ``(x - 127.5) / 128``.
    Decoding: anchor centres at ``(col, row) * stride``; ``distance2bbox``/``distance2kps``;
    score threshold 0.5, NMS IoU 0.4 (the demo's defaults).
    """

    strides = (8, 16, 32)
    num_anchors = 2
    input_rule = "letterbox into 640x640"

    def _build(self) -> None:
        super()._build()
        h, w = self.input_shape[2:]
        self.size = (int(h) if isinstance(h, int) else 640, int(w) if isinstance(w, int) else 640)
        self._centers = {}
        for s in self.strides:
            fh, fw = -(-self.size[0] // s), -(-self.size[1] // s)
            yy, xx = np.mgrid[:fh, :fw]
            c = np.stack([xx, yy], axis=-1).reshape(-1, 2).astype(np.float32) * s
            self._centers[s] = np.repeat(c, self.num_anchors, axis=0)

    def detect_arrays(self, image: np.ndarray, score_threshold: float | None = None) -> Detections:
        thr = self.score_threshold if score_threshold is None else score_threshold
        H, W = self.size
        scale = min(H / image.shape[0], W / image.shape[1])
        nh, nw = int(round(image.shape[0] * scale)), int(round(image.shape[1] * scale))
        canvas = np.zeros((H, W, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh))
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128, (W, H), (127.5, 127.5, 127.5), swapRB=True)
        outs = self.session.run(None, {self.input_name: blob})
        n = len(self.strides)
        boxes, scores, kps = [], [], []
        for i, s in enumerate(self.strides):
            sc = outs[i].reshape(-1)
            keep = np.flatnonzero(sc >= thr)
            c = self._centers[s][keep]
            d = outs[i + n].reshape(-1, 4)[keep] * s
            k = outs[i + 2 * n].reshape(-1, 10)[keep] * s
            boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))
            kps.append(np.tile(c, 5) + k)
            scores.append(sc[keep])
        boxes_a, scores_a, kps_a = np.concatenate(boxes) / scale, np.concatenate(scores), np.concatenate(kps) / scale
        keep = nms(boxes_a, scores_a, self.nms_iou)
        return _sorted(boxes_a[keep], scores_a[keep], kps_a[keep])


class UltraLight(_OrtRunner):
    """Ultra-Light-Fast-Generic-Face-Detector-1MB (Linzaer), ``version-{RFB,slim}-320.onnx``.

    Graph: input ``(1, 3, 240, 320)``; outputs ``scores (1, 4420, 2)`` (softmax applied) and
    ``boxes (1, 4420, 4)``, already decoded to corner form in [0, 1] of the input.
    Preprocessing (the authors' ``detect_imgs_onnx.py``): resize the whole image to 320x240
    (aspect ratio not kept), RGB, ``(x - 127) / 128``. Score threshold 0.7, NMS IoU 0.3.
    No landmarks (returned as NaN).
    """

    has_landmarks = False
    score_threshold = 0.7
    nms_iou = 0.3
    input_rule = "resize to 320x240"

    def detect_arrays(self, image: np.ndarray, score_threshold: float | None = None) -> Detections:
        thr = self.score_threshold if score_threshold is None else score_threshold
        blob = cv2.dnn.blobFromImage(image, 1.0 / 128, (320, 240), (127, 127, 127), swapRB=True)
        scores, boxes = self.session.run(None, {self.input_name: blob})
        scores, boxes = scores[0, :, 1], boxes[0]
        keep = np.flatnonzero(scores >= thr)
        h, w = image.shape[:2]
        b = boxes[keep] * np.array([w, h, w, h], np.float32)  # not clipped, like the authors' code
        s = scores[keep]
        k = nms(b, s, self.nms_iou)
        return _sorted(b[k], s[k], np.full((len(k), 5, 2), np.nan, np.float32))


class YuNet(PeerRunner):
    """YuNet (Wu et al. 2023, OpenCV Zoo) through OpenCV's ``cv2.FaceDetectorYN``.

    The image is fed at its own size (YuNet is fully convolutional; OpenCV pads to a multiple of
    32 internally). OpenCV returns ``x, y, w, h``, five landmarks (the subject's right eye, left
    eye, nose tip, right and left mouth corners: image-left first, i.e. our order) and a score.
    Score threshold 0.9, NMS IoU 0.3, top-k 5000 (OpenCV Zoo demo defaults). Threads are
    OpenCV's global setting (``cv2.setNumThreads``).
    """

    score_threshold = 0.9
    nms_iou = 0.3
    input_rule = "image as given"

    def _build(self) -> None:
        try:  # OpenCV 5 logs a harmless warning per network about unsupported targets
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        except AttributeError:
            pass
        if self.num_threads:
            cv2.setNumThreads(self.num_threads)
        # Built with a threshold of 0 so that per-call thresholds can be applied afterwards.
        self.detector = cv2.FaceDetectorYN.create(str(self.path), "", (320, 320), 0.0, self.nms_iou, 5000)
        self._size = (320, 320)

    def detect_arrays(self, image: np.ndarray, score_threshold: float | None = None) -> Detections:
        thr = self.score_threshold if score_threshold is None else score_threshold
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self.detector.setInputSize(size)
            self._size = size
        self.detector.setScoreThreshold(float(thr))
        _, faces = self.detector.detect(image)
        if faces is None or len(faces) == 0:
            return Detections()
        faces = faces.astype(np.float32)
        boxes = np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:4]], axis=1)
        return _sorted(boxes, faces[:, 14], faces[:, 4:14].reshape(-1, 5, 2))


# file name -> (runner class, display name)
PEER_FILES: dict[str, tuple[type[PeerRunner], str]] = {
    "yunet_n_dynamic.onnx": (YuNet, "YuNet-n"),
    "yunet_s_dynamic.onnx": (YuNet, "YuNet-s"),
    "scrfd_500m_kps.onnx": (SCRFD, "SCRFD-0.5G"),
    "scrfd_2.5g_kps.onnx": (SCRFD, "SCRFD-2.5G"),
    "version-slim-320.onnx": (UltraLight, "Ultra-Light-slim-320"),
    "version-RFB-320.onnx": (UltraLight, "Ultra-Light-RFB-320"),
}


def landmark_runner(path: str | Path, outputs: list[str], num_threads: int | None = None) -> PeerRunner:
    """A peer graph with five landmarks (SCRFD ``*_kps``, YuNet), recognised by its ``outputs``
    (:func:`featherface.core.runners.graph_output_names`) rather than its file name; ValueError
    for any other graph."""
    if len(outputs) == 9:  # scores, boxes, keypoints at strides 8, 16, 32
        return SCRFD(path, num_threads, name=Path(path).name)
    if {"kps_8", "kps_16", "kps_32"} <= set(outputs):
        return YuNet(path, num_threads, name=Path(path).name)
    raise ValueError(f"{path}: not a FeatherFace/RetinaFace model, nor an SCRFD (_kps) or YuNet graph "
                     f"(outputs {', '.join(outputs)})")


def load_peers(folder: str | Path, num_threads: int | None = None) -> list[PeerRunner]:
    """Every known peer model found in ``folder`` (missing files are logged and skipped)."""
    folder = Path(folder)
    runners = []
    for fname, (cls, name) in PEER_FILES.items():
        path = folder / fname
        if not path.is_file():
            log.warning("peer model %s not found in %s; skipped", fname, folder)
            continue
        runners.append(cls(path, num_threads, name=name))
    return runners
