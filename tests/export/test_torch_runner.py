"""Runners: OpenVINO (static shape compiled per size, LRU cache) agrees with PyTorch; the
PyTorch runner applies its thread count per call."""
import numpy as np
import pytest
import torch

from featherface.export.graph import export_onnx
from featherface.models.loading import load_any, checkpoint_path
from featherface.core.runners import OpenVinoRunner
from featherface.export.torch_runner import TorchRunner

pytest.importorskip("openvino", reason="the openvino extra is not installed")


@pytest.mark.parametrize("arch", ["nano", "v1"])
def test_openvino_matches_pytorch_at_several_sizes(arch, tmp_path, official_v1_path):
    model = load_any(checkpoint_path("nano") if arch == "nano" else official_v1_path)[0]
    path = export_onnx(model, tmp_path / f"{arch}.onnx", arch, 320, 320)
    ov, pt = OpenVinoRunner(path, num_threads=1, cache_size=2), TorchRunner(model)
    g = torch.Generator().manual_seed(0)
    for h, w in ((320, 320), (200, 344), (320, 320), (96, 128)):
        x = (torch.rand(2, 3, h, w, generator=g) * 256 - 128).numpy()
        for a, b in zip(pt(x), ov(x)):
            assert a.shape == b.shape
            assert float(np.abs(a - b).max()) < 1e-3
    # three distinct shapes were compiled; the cache keeps the two most recent
    assert list(ov._compiled) == [(2, 3, 320, 320), (2, 3, 96, 128)]
    assert ov.arch == arch and ov.contract["mean"] == (104.0, 117.0, 123.0)


def test_face_detector_openvino_backend_equals_torch():
    import cv2

    from featherface import FaceDetector
    from tests.conftest import shared_file

    img = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    a = FaceDetector.from_pretrained("nano").detect_arrays(img)
    b = FaceDetector.from_pretrained("nano", backend="openvino", num_threads=1).detect_arrays(img)
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


@pytest.mark.parametrize("arch", ["nano", "retinaface", "v1"])
def test_torch_runner_channels_last_matches_nchw_and_leaves_the_model_alone(arch):
    from featherface.models import build_model

    model = build_model(arch).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1, generator=g)
                m.running_var.uniform_(0.5, 2, generator=g)
    fast, plain = TorchRunner(model), TorchRunner(model, channels_last=False)
    assert fast.channels_last and not plain.channels_last  # CPU default for these models
    x = (torch.rand(1, 3, 96, 160, generator=g) * 256 - 128).numpy()
    for a, b in zip(fast(x), plain(x)):
        assert a.shape == b.shape
        assert float(np.abs(a - b).max()) < 1e-3 * max(1.0, float(np.abs(b).max()))
    # the caller's model keeps its NCHW parameters
    assert all(p.is_contiguous() for p in model.parameters())
