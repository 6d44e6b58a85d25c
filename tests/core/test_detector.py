"""FaceDetector with the official V1 weights on real photographs."""
import cv2
import numpy as np
import pytest

from featherface import FaceDetector, LANDMARK_NAMES
from featherface.core.detector import preprocess
from featherface.export.torch_runner import TorchRunner
from featherface.models import build_model
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def v1_detector(v1_model):
    return FaceDetector(TorchRunner(v1_model), arch="v1")


@pytest.fixture(scope="module")
def crowd():
    return cv2.imread(str(shared_file("images/crowd_baseball.jpg")))


def test_crowd_photo_finds_faces(v1_detector, crowd):
    faces = v1_detector.detect(crowd)
    assert len(faces) >= 25
    assert all(f.score >= 0.5 for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    h, w = crowd.shape[:2]
    for f in faces:
        x1, y1, x2, y2 = f.box
        assert -5 <= x1 < x2 <= w + 5 and -5 <= y1 < y2 <= h + 5
        assert f.landmarks.shape == (5, 2)
        # eyes above the mouth corners, left eye on the image left of the right eye
        assert f.landmarks[0, 1] < f.landmarks[3, 1] and f.landmarks[0, 0] < f.landmarks[1, 0]
    d = faces[0].to_dict()
    assert list(d["landmarks"]) == list(LANDMARK_NAMES)


def test_no_face_gives_empty_list(v1_detector):
    assert v1_detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    arrays = v1_detector.detect_arrays(np.zeros((50, 60, 3), np.uint8))
    assert arrays.boxes.shape == (0, 4) and arrays.landmarks.shape == (0, 5, 2)


def test_batch_of_mixed_sizes_equals_one_by_one(v1_detector, crowd):
    small = cv2.imread(str(shared_file("images/small_pair.jpg")))
    crop = crowd[:400, 100:700].copy()
    images = [crowd, small, crop, crowd[:, ::-1].copy()]
    batched = v1_detector.detect_arrays(images)
    for img, got in zip(images, batched):
        ref = v1_detector.detect_arrays(img)
        assert len(ref) == len(got) > 0
        np.testing.assert_allclose(got.boxes, ref.boxes, atol=1e-2)
        np.testing.assert_allclose(got.scores, ref.scores, atol=1e-4)


def test_rgb_and_resize_policy(v1_detector, crowd):
    bgr = v1_detector.detect_arrays(crowd)
    rgb = v1_detector.detect_arrays(np.ascontiguousarray(crowd[:, :, ::-1]), color="rgb")
    np.testing.assert_allclose(rgb.boxes, bgr.boxes, atol=1e-3)
    native = v1_detector.detect_arrays(crowd, long_side=None)
    assert len(native) >= 25  # the photo is 1024 wide: original size differs from 640
    assert not np.allclose(native.scores[:5], bgr.scores[:5])


def test_bad_inputs():
    det = FaceDetector(TorchRunner(build_model("nano")), arch="nano")
    with pytest.raises(ValueError, match="uint8"):
        det.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="HxWx3"):
        det.detect(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(ValueError, match="photo.jpg: cannot be read as an image"):  # a path that is not there
        det.detect("photo.jpg")
    with pytest.raises(TypeError):
        det.detect(b"not an image")
    with pytest.raises(ValueError, match="color"):
        det.detect(np.zeros((10, 10, 3), np.uint8), color="hsv")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        FaceDetector.from_pretrained("does/not/exist.pt")


def test_preprocess_scale_and_mean():
    img = np.zeros((300, 600, 3), np.uint8)
    x, (sx, sy) = preprocess(img, long_side=640)
    assert x.shape == (3, 320, 640) and sx == pytest.approx(600 / 640) and sy == pytest.approx(300 / 320)
    assert x[:, 0, 0].tolist() == [-104.0, -117.0, -123.0]


def test_bundled_nano_uses_its_recommended_threshold(tmp_path):
    import cv2

    from featherface.models.checkpoint import read_checkpoint
    from featherface.models.loading import checkpoint_path

    ck = read_checkpoint(checkpoint_path("nano"))
    assert ck["arch"] == "nano" and 0 < ck["meta"]["score_threshold"] < 1 and ck["meta"]["score_threshold"] != 0.5
    det = FaceDetector.from_pretrained("nano")
    assert det.cfg.score_threshold == ck["meta"]["score_threshold"]
    assert FaceDetector.from_pretrained("nano", score_threshold=0.35).cfg.score_threshold == 0.35
    # The recommendation travels into ONNX metadata too.
    assert FaceDetector.from_pretrained("nano", backend="onnxruntime").cfg.score_threshold == ck["meta"]["score_threshold"]
    crowd = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    assert len(det.detect(crowd)) >= 15
    assert det.detect(np.full((240, 320, 3), 127, np.uint8), score_threshold=0.5) == []


def test_api_mistakes_get_helpful_errors():
    from featherface import FaceDetector

    det = FaceDetector.from_pretrained("nano")
    with pytest.raises(TypeError, match="image is None: cv2.imread returns None"):
        det.detect(None)

    class FakePIL:
        def getbands(self):
            return ("R", "G", "B")

    with pytest.raises(TypeError, match=r"PIL image: pass np.asarray\(img\) and color='rgb'"):
        det.detect(FakePIL())
    gray = cv2.cvtColor(cv2.imread(str(shared_file("images/crowd_baseball.jpg"))), cv2.COLOR_BGR2GRAY)
    a, b = det.detect_arrays(gray[:, :, None]), det.detect_arrays(gray)  # H x W x 1 works like H x W
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_num_threads_is_applied_per_call_and_restored():
    import torch

    from featherface import FaceDetector

    saved = torch.get_num_threads()
    det = FaceDetector.from_pretrained("nano", backend="torch", num_threads=1)
    seen = []
    inner = det.runner.model
    det.runner.model = lambda x: (seen.append(torch.get_num_threads()), inner(x))[1]
    det.detect(np.zeros((64, 64, 3), np.uint8))
    assert seen == [1] and torch.get_num_threads() == saved
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        FaceDetector.from_pretrained("nano", num_threads=-2)


def test_detector_reads_the_input_contract_from_the_weights(tmp_path):
    """Weights that declare RGB input get RGB pixels: Nano with its first convolution's input
    channels reversed and declared RGB (mean 123, 117, 104) is the same detector as Nano."""
    import torch

    from featherface.models.checkpoint import load_model, save_checkpoint
    from featherface.models.loading import checkpoint_path

    model, ckpt = load_model(checkpoint_path("nano"))
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels == 3)
    with torch.no_grad():
        first.weight.copy_(first.weight.flip(1))
    rgb_path = tmp_path / "rgb.pt"
    save_checkpoint(model, "nano", rgb_path, meta=ckpt.get("meta"))
    raw = torch.load(rgb_path, map_location="cpu", weights_only=True)
    raw["preprocess"] = {"color": "rgb", "mean": [123.0, 117.0, 104.0], "std": None}
    torch.save(raw, rgb_path)
    img = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    bgr_det, rgb_det = FaceDetector.from_pretrained("nano", backend="torch"), FaceDetector.from_pretrained(rgb_path)
    assert rgb_det.contract["color"] == "rgb"
    # the same pixels reach the same network function: raw outputs agree
    x_bgr = preprocess(img, mean=bgr_det.contract["mean"], model_color=bgr_det.contract["color"])[0][None]
    x_rgb = preprocess(img, mean=rgb_det.contract["mean"], model_color=rgb_det.contract["color"])[0][None]
    np.testing.assert_array_equal(x_rgb, x_bgr[:, ::-1])
    for a, b in zip(bgr_det.runner(x_bgr), rgb_det.runner(x_rgb)):
        assert float(np.abs(a - b).max()) < 1e-3


def test_detect_passes_merges_sizes_and_the_mirrored_image():
    """Passes at 640 and 960 keep every face of the 640 pass (one box per face after NMS); the
    mirrored pass maps its faces back: boxes within 2 px of the direct pass and the image-left eye
    still on the left."""
    img = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    det = FaceDetector.from_pretrained("nano")
    one = det.detect_arrays(img)
    two = det.detect_passes(img, (640, 960))
    assert len(two) >= len(one)
    from featherface.core.geometry import iou_matrix

    assert (iou_matrix(one.boxes, two.boxes) > 0.4).any(axis=1).all()
    assert (iou_matrix(two.boxes, two.boxes) - np.eye(len(two)) <= det.cfg.nms_iou + 1e-6).all()
    mirrored = det.detect_passes(np.ascontiguousarray(img[:, ::-1]), (640,), flip=True)
    direct = det.detect_passes(img, (640,), flip=True)
    w = img.shape[1]
    flipped_back = np.stack([w - mirrored.boxes[:, 2], mirrored.boxes[:, 1], w - mirrored.boxes[:, 0], mirrored.boxes[:, 3]], 1)
    assert np.abs(direct.boxes[:, None, :] - flipped_back[None]).max(axis=2).min(axis=1).max() < 2.0
    assert (direct.landmarks[:, 0, 0] < direct.landmarks[:, 1, 0]).all()


def test_detect_takes_a_file_path_as_an_image():
    path = shared_file("images/crowd_baseball.jpg")
    det = FaceDetector.from_pretrained("nano")
    from featherface import read_image

    direct = det.detect_arrays(read_image(path))
    for given in (path, str(path)):
        d = det.detect_arrays(given)
        np.testing.assert_array_equal(d.boxes, direct.boxes)
    assert len(det.detect(str(path))) >= 18 and len(det.detect_passes(path, (640,))) == len(direct)
    with pytest.raises(ValueError, match="missing"):
        det.detect("no_such_photo.jpg")


def test_detect_passes_caps_grow_with_the_area():
    """A detector capped at 10 faces finds more than 10 in a frame of four crowd photos when the
    pass is larger than 640x640: the caps grow with the pass's area."""
    img = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    frame = np.concatenate([np.concatenate([img, img], 1)] * 2, 0)
    det = FaceDetector.from_pretrained("nano", keep_top_k=10)
    assert len(det.detect_arrays(frame, long_side=None)) == 10
    assert len(det.detect_passes(frame, (None,))) > 40


def test_detect_passes_trust_a_coarse_pass_only_for_faces_it_resolves(monkeypatch):
    """With a pass at 1.5 times its resolution or more, a pass keeps faces of 24 px or more at its
    own scale only; with a pass at 1.25 times, it keeps all of them."""
    from featherface.core.postprocess import Detections

    det = FaceDetector.from_pretrained("nano")
    image = np.zeros((1000, 2000, 3), np.uint8)
    coarse = np.array([[0, 0, 31, 31], [500, 500, 600, 600]], np.float32)  # 10 and 32 px at scale 0.32

    def fake(img, long_side=None, **kwargs):
        boxes = coarse if long_side == 640 else np.zeros((0, 4), np.float32)
        return Detections(boxes, np.full(len(boxes), 0.9, np.float32), np.zeros((len(boxes), 5, 2), np.float32))
    monkeypatch.setattr(det, "detect_arrays", fake)
    assert det.detect_passes(image, (640, None)).boxes.tolist() == [[500, 500, 600, 600]]
    assert len(det.detect_passes(image, (640, 800))) == 2
