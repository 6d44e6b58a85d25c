"""Aligned and plain crops: the similarity transform maps the landmarks onto the template."""
import numpy as np
import pytest

from featherface.core.align import ARCFACE_TEMPLATE, align_face, alignment_matrix, crop_box, crop_face, similarity_transform


def _apply(m, pts):
    return pts @ m[:, :2].T + m[:, 2]


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, t = 0.3, 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)


@pytest.mark.parametrize("size", [112, 224])
def test_landmarks_land_on_the_template(size):
    # the template itself, rotated by 20 degrees, scaled 2.5x and moved: an exact similarity
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    landmarks = 2.5 * ARCFACE_TEMPLATE @ rot.T + [300, 140]
    m = alignment_matrix(landmarks, size)
    np.testing.assert_allclose(_apply(m, landmarks), ARCFACE_TEMPLATE * size / 112, atol=1e-6)
    img = np.zeros((600, 700, 3), np.uint8)
    for x, y in landmarks:  # a bright dot at each landmark lands on the template point
        img[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
    crop = align_face(img, landmarks, size)
    assert crop.shape == (size, size, 3)
    for x, y in ARCFACE_TEMPLATE * size / 112:
        assert crop[int(round(y)), int(round(x))].max() > 100


def test_bad_sizes_and_landmarks_are_refused():
    with pytest.raises(ValueError, match="multiple of it"):
        alignment_matrix(ARCFACE_TEMPLATE, 100)
    with pytest.raises(ValueError, match="finite"):
        alignment_matrix(np.full((5, 2), np.nan))


def test_plain_crop_margin_and_clipping():
    # 20x40 box -> square 40x40 around (20, 40) -> x1.5 = 60x60 -> x -10..50 (clipped to 0), y 10..70
    assert crop_box([10, 20, 30, 60], (100, 100), margin=0.25, square=True) == (0, 10, 50, 70)
    img = np.arange(100 * 100 * 3, dtype=np.uint8).reshape(100, 100, 3)
    c = crop_face(img, [40, 40, 60, 60], margin=0.5)
    assert c.shape == (40, 40, 3)
    np.testing.assert_array_equal(c, img[30:70, 30:70])


def test_crop_with_another_detectors_landmarks(tmp_path):
    """`crop --align --landmarks-model RETINAFACE`: each face matched in RetinaFace's output is
    aligned with RetinaFace's landmarks (recorded per face), the others with Nano's."""
    import json

    import numpy as np

    from featherface import FaceDetector, read_image
    from featherface.cli import main
    from featherface.core.geometry import iou_matrix
    from tests.conftest import shared_file

    photo = shared_file("images/crowd_baseball.jpg")
    retina = shared_file("peers/retinaface_mnet0.25_biubug6.pth")
    out = tmp_path / "crops"
    assert main(["crop", str(photo), "--output", str(out), "--align", "--landmarks-model", str(retina)]) == 0
    (rec,) = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines() if '"image"' in line]
    sources = [f["landmarks_from"] for f in rec["faces"]]
    assert sources.count(str(retina)) >= 15 and set(sources) <= {str(retina), "nano"}
    other = FaceDetector.from_pretrained(retina).detect_arrays(read_image(photo), score_threshold=0.1)
    for face in rec["faces"]:
        if face["landmarks_from"] == str(retina):
            j = int(iou_matrix(np.array([face["box"]]), other.boxes).argmax())
            np.testing.assert_allclose(np.array(list(face["landmarks"].values())), other.landmarks[j], atol=0.01)
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["landmarks_from"]["model"] == str(retina)
    assert main(["crop", str(photo), "--output", str(tmp_path / "plain"), "--landmarks-model", str(retina)]) == 2


def test_crop_with_scrfd_landmarks(tmp_path):
    """`--landmarks-model scrfd_2.5g_kps.onnx` (the most precise landmarks measured): recognised
    by its graph, its landmarks align the faces it matches, its file recorded in the settings; a
    graph of no known detector is refused in one line (exit 2)."""
    import json

    import numpy as np

    from featherface import read_image
    from featherface.cli import main
    from featherface.core.geometry import iou_matrix
    from featherface.peers.runners import SCRFD
    from tests.conftest import shared_file

    photo = shared_file("images/crowd_baseball.jpg")
    scrfd = shared_file("peers/scrfd_2.5g_kps.onnx")
    out = tmp_path / "crops"
    assert main(["crop", str(photo), "--output", str(out), "--align", "--landmarks-model", str(scrfd)]) == 0
    (rec,) = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines() if '"image"' in line]
    assert [f["landmarks_from"] for f in rec["faces"]].count(str(scrfd)) >= 15
    other = SCRFD(scrfd).detect_arrays(read_image(photo), score_threshold=0.1)
    for face in rec["faces"]:
        if face["landmarks_from"] == str(scrfd):
            j = int(iou_matrix(np.array([face["box"]]), other.boxes).argmax())
            np.testing.assert_allclose(np.array(list(face["landmarks"].values())), other.landmarks[j], atol=0.01)
    settings = json.loads((out / "run.json").read_text())["settings"]["landmarks_from"]
    assert settings["engine"] == "SCRFD" and len(settings["model_sha256"]) == 64
    ultra = shared_file("peers/version-RFB-320.onnx")  # boxes only
    assert main(["crop", str(photo), "--output", str(tmp_path / "u"), "--align", "--landmarks-model", str(ultra)]) == 2
