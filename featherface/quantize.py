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


def calibration_inputs(images: list[np.ndarray], long_side: int = 640) -> list[np.ndarray]:
    """Network inputs ``(1, 3, H, W)`` float32 for the calibration photos."""
    from .detector import preprocess

    return [preprocess(img, long_side=long_side)[0][None] for img in images]


def quantize_int8(fp32_path: str | Path, out_path: str | Path, inputs: list[np.ndarray],
                  per_channel: bool = True) -> Path:
    """Write the INT8 (QDQ) version of ``fp32_path`` to ``out_path``, calibrating activation ranges
    (min/max) on ``inputs``. Returns ``out_path``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not inputs:
        raise ValueError("INT8 quantization needs at least one calibration photo")

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
        quantize_static(str(prepared), str(Path(tmp) / "int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        proto = onnx.load(str(Path(tmp) / "int8.onnx"))
    meta = {p.key: p.value for p in onnx.load(str(fp32_path), load_external_data=False).metadata_props}
    meta["quantization"] = (f"int8 static QDQ, {'per-channel' if per_channel else 'per-tensor'} weights, "
                            f"uint8 activations, min/max calibrated on {len(inputs)} photos")
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out_path))
    return out_path
