"""INT8 export: a QDQ graph with the fp32 contract that onnxruntime and OpenVINO run, finding
most of the faces the fp32 model finds."""
import shutil

import cv2
import pytest

from featherface.cli import main
from featherface.evaluation.agreement import match_image
from tests.conftest import shared_file

pytest.importorskip("onnxruntime.quantization", reason="needs onnxruntime")


def test_int8_export_runs_on_both_engines(tmp_path):
    import onnx

    from featherface import FaceDetector

    calib = tmp_path / "calib"
    calib.mkdir()
    for p in sorted(shared_file("images/portraits").glob("img*.jpg"))[:6]:
        shutil.copy(p, calib / p.name)
    assert main(["export", "--model", "nano", "-o", str(tmp_path / "nano.onnx"), "--int8",
                 "--calibration-images", str(calib), "--calibration-count", "6"]) == 0
    q = tmp_path / "nano_int8.onnx"
    meta = {p.key: p.value for p in onnx.load(str(q)).metadata_props}
    assert meta["featherface_arch"] == "nano" and "int8 static QDQ" in meta["quantization"]
    graph = onnx.load(str(q)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    conv_weight_from = {n.name: producer.get(n.input[1], "initializer") for n in graph.node if n.op_type == "Conv"}
    # the first backbone stage stays fp32 by default (where INT8 cost the most AP); the rest is INT8
    stage1 = [k for k in conv_weight_from if "/backbone/stage1/" in k]
    assert len(stage1) == 11 and all(conv_weight_from[k] != "DequantizeLinear" for k in stage1)
    later = [k for k in conv_weight_from if k not in stage1]
    assert later and all(conv_weight_from[k] == "DequantizeLinear" for k in later)
    assert "kept fp32" in meta["quantization"]
    # the INT8 graph stores the same network: its parameter count (INT8 weights, not their
    # scales) matches the fp32 graph's up to the bias copies the quantizer makes
    from featherface.peers.runners import onnx_parameter_count

    fp32_count = onnx_parameter_count(tmp_path / "nano.onnx")
    assert fp32_count > 300_000 and abs(onnx_parameter_count(q) - fp32_count) < 0.01 * fp32_count
    img = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    ref = FaceDetector.from_pretrained("nano").detect_arrays(img)
    for backend in ("onnxruntime", "openvino"):
        if backend == "openvino":
            pytest.importorskip("openvino")
        det = FaceDetector.from_pretrained(q, backend=backend, num_threads=1)
        assert det.cfg.score_threshold == FaceDetector.from_pretrained("nano").cfg.score_threshold
        got = det.detect_arrays(img, score_threshold=0.05)
        found = match_image(got, ref).sum() if len(got) else 0
        assert len(ref) > 10 and found >= 0.4 * len(ref), (backend, int(found), len(ref))


def test_int8_needs_calibration_photos(tmp_path, capsys):
    assert main(["export", "--model", "nano", "-o", str(tmp_path / "n.onnx"), "--int8"]) == 2
    assert "--calibration-images" in capsys.readouterr().err
