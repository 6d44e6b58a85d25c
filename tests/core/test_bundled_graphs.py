"""The graphs inside the package: nano.onnx equals nano.pt, nano_int8.onnx finds the same faces."""
import cv2
import numpy as np
import pytest

from featherface import FaceDetector
from featherface.core.weights import EXAMPLE_IMAGE, WEIGHTS_DIR
from tests.conftest import shared_file


def test_fp32_graph_equals_the_checkpoint():
    torch = pytest.importorskip("torch")
    from featherface.core.runners import OnnxRunner
    from featherface.models.loading import checkpoint_path, load_any

    model = load_any(checkpoint_path("nano"))[0].eval()
    graph = OnnxRunner(WEIGHTS_DIR / "nano.onnx")
    assert graph.arch == "nano" and graph.score_threshold == 0.65 and graph.contract["color"] == "bgr"
    x = torch.rand(2, 3, 200, 344, generator=torch.Generator().manual_seed(0)) * 256 - 128
    with torch.no_grad():
        ref = model(x)
    for a, b in zip(ref, graph(x.numpy())):
        assert float(np.abs(a.numpy() - b).max()) < 1e-4


def test_int8_graph_finds_the_same_faces_on_the_crowd_photo():
    crowd = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    fp32 = FaceDetector.from_pretrained("nano").detect_arrays(crowd)
    int8 = FaceDetector.from_pretrained("nano-int8").detect_arrays(crowd)
    assert len(fp32) >= 18 and abs(len(fp32) - len(int8)) <= 1


def test_example_photo_ships_and_has_its_face():
    faces = FaceDetector.from_pretrained("nano").detect(cv2.imread(str(EXAMPLE_IMAGE)))
    assert len(faces) == 1 and faces[0].score > 0.9
