"""ONNX export: dynamic batch/height/width, parity with PyTorch away from the export size."""
import cv2
import numpy as np
import onnx
import pytest

from featherface import FaceDetector
from featherface.models.checkpoint import load_model, save_checkpoint
from featherface.export.graph import check_parity, export_onnx
from featherface.core.runners import OnnxRunner
from featherface.export.torch_runner import TorchRunner
from featherface.models import build_model
from tests.conftest import shared_file

TOL = 1e-3  # max abs difference on raw regressions/logits (and on decoded pixels)


@pytest.fixture(scope="module")
def nano_model():
    import torch

    torch.manual_seed(3)
    m = build_model("nano").eval()
    # Non-trivial BN statistics so that the outputs are not near zero.
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m


def test_v1_parity_other_sizes_batch2(v1_model, tmp_path):
    path = export_onnx(v1_model, tmp_path / "v1.onnx", "v1", 320, 320)
    diffs = check_parity(v1_model, path, sizes=((480, 640), (313, 487)), batch=2)
    assert max(diffs.values()) < TOL, diffs


def test_nano_parity_other_sizes_batch2(nano_model, tmp_path):
    path = export_onnx(nano_model, tmp_path / "nano.onnx", "nano", 320, 320)
    diffs = check_parity(nano_model, path, sizes=((480, 640), (313, 487)), batch=2)
    assert max(diffs.values()) < TOL, diffs


def test_retinaface_parity_other_sizes_batch2(tmp_path):
    from featherface.models.convert import load_official

    model, _ = load_official(shared_file("peers/retinaface_mnet0.25_biubug6.pth"))
    path = export_onnx(model, tmp_path / "retina.onnx", "retinaface", 320, 320)
    diffs = check_parity(model, path, sizes=((480, 640), (313, 487)), batch=2)
    assert max(diffs.values()) < TOL, diffs


def test_graph_contract_and_metadata(nano_model, tmp_path):
    path = export_onnx(nano_model, tmp_path / "n.onnx", "nano", 256, 256, decode=True)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["featherface_arch"] == "nano" and meta["decoded"] == "true" and meta["mean"] == "104.0,117.0,123.0"
    inp = proto.graph.input[0]
    assert inp.name == "input"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    outs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert outs["boxes"][:2] == ["batch", "anchors"] and outs["scores"] == ["batch", "anchors"]
    diffs = check_parity(nano_model, path, sizes=((200, 328),), batch=2)
    assert max(diffs.values()) < TOL, diffs


def test_onnxruntime_detector_matches_torch(v1_model, tmp_path):
    img = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    ref = FaceDetector(TorchRunner(v1_model), arch="v1").detect_arrays(img)
    for decode in (False, True):
        path = export_onnx(v1_model, tmp_path / f"v1_{decode}.onnx", "v1", 640, 640, decode=decode)
        det = FaceDetector(OnnxRunner(path), arch="v1")
        got = det.detect_arrays(img)
        assert len(got) == len(ref) >= 25
        np.testing.assert_allclose(got.boxes, ref.boxes, atol=0.05)
        np.testing.assert_allclose(got.scores, ref.scores, atol=1e-4)


def test_from_pretrained_onnxruntime_backend(nano_model, tmp_path):
    save_checkpoint(nano_model, "nano", tmp_path / "nano.pt")
    det = FaceDetector.from_pretrained(tmp_path / "nano.pt", backend="onnxruntime", score_threshold=0.0, keep_top_k=5)
    ref = FaceDetector(TorchRunner(load_model(tmp_path / "nano.pt")[0]), arch="nano", score_threshold=0.0, keep_top_k=5)
    img = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    a, b = det.detect_arrays(img), ref.detect_arrays(img)
    assert det.arch == "nano"
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
