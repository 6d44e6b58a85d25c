"""INT8 post-training quantization of an exported ONNX graph (static, QDQ format, per-channel
weights, activations calibrated on real photos).

Calibrate on photos the model may have trained on (the training pool), NEVER on the benchmark
sets that measure the accuracy cost. Each calibration photo is prepared exactly as the detector
prepares its input (long side 640, BGR minus the mean), so the activation ranges are the ones seen
at inference. The INT8 graph keeps the fp32 graph's metadata (contract, recommended threshold)
plus ``quantization``; it runs with onnxruntime and OpenVINO (``FaceDetector.from_pretrained(
"nano_int8.onnx", backend="openvino")``).
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def calibration_photos(folder: str | Path, count: int) -> list[np.ndarray]:
    """``count`` readable photos of ``folder``, a fixed, spread-out sample (shuffled with seed 0)."""
    import random

    from ..core.files import list_images, read_image

    names = list_images(folder)
    random.Random(0).shuffle(names)
    photos: list[np.ndarray] = []
    for rel in names:
        if len(photos) == count:
            break
        try:
            photos.append(read_image(Path(folder) / rel))
        except ValueError:
            continue
    return photos


def calibration_inputs(images: list[np.ndarray], long_side: int = 640) -> list[np.ndarray]:
    """Network inputs ``(1, 3, H, W)`` float32 for the calibration photos."""
    from ..core.detector import preprocess

    return [preprocess(img, long_side=long_side)[0][None] for img in images]


#: calibration methods: name -> (onnxruntime CalibrationMethod name, extra options)
CALIBRATION = {"minmax": ("MinMax", {}),
               "percentile": ("Percentile", {"CalibPercentile": 99.99}),
               "entropy": ("Entropy", {})}

#: Nodes kept fp32 by default: the first backbone stage (first conv and the five stride-2..8
#: depthwise/pointwise blocks; ``backbone`` in Nano, ``body`` in V1 and RetinaFace). Measured
#: with Nano (onnxruntime, 100 pool photos, maskfaces_dev / groupselfies_dev AP; fp32 0.669 /
#: 0.859): everything INT8 0.594 / 0.803; one part at a time kept fp32 (maskfaces_dev): backbone
#: 0.661, stage 1 0.666, stage 2 0.588, stage 3 0.596, attention gates / BiFPN / SSH / heads
#: 0.592-0.599. The early high-resolution layers with few channels carry the error.
DEFAULT_KEEP_FP32 = ("/backbone/stage1/", "/body/stage1/")


def nodes_matching(model_path: str | Path, patterns: tuple[str, ...]) -> list[str]:
    """Names of the nodes of ``model_path`` whose name contains one of ``patterns``."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [n.name for n in graph.node if any(p in n.name for p in patterns)]


def quantize_int8(fp32_path: str | Path, out_path: str | Path, inputs: list[np.ndarray],
                  per_channel: bool = True, method: str = "minmax", convs_only: bool = True,
                  keep_fp32: tuple[str, ...] = DEFAULT_KEEP_FP32) -> Path:
    """Write the INT8 (QDQ) version of ``fp32_path`` to ``out_path``, calibrating activation ranges
    on ``inputs`` with ``method`` (a key of :data:`CALIBRATION`). ``convs_only`` quantizes only
    convolutions (attention gates, fusions and other small nodes stay fp32); ``keep_fp32`` leaves
    every node whose name contains one of its strings in fp32. Returns ``out_path``."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not inputs:
        raise ValueError("INT8 quantization needs at least one calibration photo")
    if method not in CALIBRATION:
        raise ValueError(f"calibration method must be one of {sorted(CALIBRATION)}, got {method!r}")
    calib_name, calib_options = CALIBRATION[method]
    if method != "minmax":
        # histogram methods stack every photo's activations: one shape for all, so pad each input
        # (already mean-subtracted) with zeros, i.e. mean-coloured borders, to the largest size
        h = max(x.shape[2] for x in inputs)
        w = max(x.shape[3] for x in inputs)
        inputs = [np.pad(x, ((0, 0), (0, 0), (0, h - x.shape[2]), (0, w - x.shape[3]))) for x in inputs]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(inputs)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {"input": x}

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="featherface_int8_") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        excluded = nodes_matching(prepared, tuple(keep_fp32))
        quantize_static(str(prepared), str(Path(tmp) / "int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, calib_name),
                        op_types_to_quantize=["Conv"] if convs_only else None, nodes_to_exclude=excluded,
                        extra_options=dict(calib_options))
        proto = onnx.load(str(Path(tmp) / "int8.onnx"))
    meta = {p.key: p.value for p in onnx.load(str(fp32_path), load_external_data=False).metadata_props}
    meta["quantization"] = (f"int8 static QDQ, {'per-channel' if per_channel else 'per-tensor'} weights, "
                            f"uint8 activations, {method} calibration on {len(inputs)} photos"
                            + (", convolutions only" if convs_only else "")
                            + (f", {len(excluded)} nodes kept fp32" if excluded else ""))
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out_path))
    return out_path
