"""The pool-labelling scripts end to end: a peer detector labels a tiny pool (resumably), and the
box-convention measurement writes its map where ``featherface distill --pool-labels`` reads it."""
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from featherface.data.pool import read_pool_labels
from tests.conftest import REPO, shared_file


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=True)


def test_label_pool_then_box_convention(tmp_path):
    scrfd = shared_file("peers/scrfd_500m_kps.onnx")
    v1 = shared_file("weights/featherface_v1_official.pth")
    pool = tmp_path / "pool"
    (pool / "groups").mkdir(parents=True)
    (pool / "blank").mkdir()
    shutil.copy(shared_file("images/crowd_baseball.jpg"), pool / "groups" / "crowd.jpg")
    cv2.imwrite(str(pool / "blank" / "grey.png"), np.full((240, 320, 3), 128, np.uint8))
    out = tmp_path / "labels" / "scrfd.json"

    _run("scripts/label_pool.py", str(scrfd), str(pool), str(out), "--workers", "1", "--limit", "1")
    assert list(json.loads(out.read_text())["images"]) == ["blank/grey.png"]  # sorted order, first photo only
    _run("scripts/label_pool.py", str(scrfd), str(pool), str(out), "--workers", "1")  # resumes: one more photo
    partial = out.with_name(out.name + ".partial.jsonl").read_text().splitlines()
    assert [json.loads(line)[0] for line in partial] == ["blank/grey.png", "groups/crowd.jpg"]  # not labelled twice
    data = json.loads(out.read_text())
    assert sorted(data["images"]) == ["blank/grey.png", "groups/crowd.jpg"]
    assert data["images"]["blank/grey.png"]["boxes"] == []
    crowd = data["images"]["groups/crowd.jpg"]
    assert len(crowd["boxes"]) >= 15 and len(crowd["scores"]) == len(crowd["boxes"]) == len(crowd["landmarks"])
    assert min(crowd["scores"]) >= 0.3 and data["detector"]["file"] == "scrfd_500m_kps.onnx"

    r = _run("scripts/box_convention.py", str(out), str(pool), "--teacher", str(v1), "--sample", "5", "--write",
             "--threads", "1")
    measured = json.loads(r.stdout.strip().splitlines()[-1])
    assert measured["pairs"] >= 10 and measured["photos"] == 1  # only the crowd photo has boxes
    assert 0.8 < measured["w_scale"] < 1.2 and 0.8 < measured["h_scale"] < 1.2  # both detectors' face boxes
    # the map is now in the file, and read_pool_labels applies it
    boxes, summary = read_pool_labels(out, min_score=0.5)
    assert summary[0]["convention"] == {k: measured[k] for k in ("w_scale", "h_scale", "dx", "dy")}
    assert len(boxes["groups/crowd.jpg"]) == sum(s >= 0.5 for s in crowd["scores"])


def test_build_occluder_bank(tmp_path):
    """From a Clothing Co-Parsing work tree (one labelled photo, one without a face in the label
    file) and the pool's photo: the bank holds that photo's two arms."""
    import scipy.io

    from featherface.data.occluders import OccluderBank
    from tests.data.test_occluders import _person

    image, parts, faces = _person()
    ccp = tmp_path / "ccp" / "annotations" / "pixel-level"
    ccp.mkdir(parents=True)
    for name in ("0001", "0002"):
        scipy.io.savemat(ccp / f"{name}.mat", {"groundtruth": parts.astype(np.uint8)})
    photos = tmp_path / "pool" / "street_fashion" / "photos"
    photos.mkdir(parents=True)
    for name in ("0001", "0002"):
        cv2.imwrite(str(photos / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"images": {
        "street_fashion/photos/0001.jpg": {"boxes": [[0, 0, 10, 10], faces[0].tolist()], "scores": [0.3, 0.9]},
        "street_fashion/photos/0002.jpg": {"boxes": [faces[0].tolist()], "scores": [0.2]}}}))
    out = tmp_path / "bank" / "limbs.npz"
    r = _run("scripts/build_occluder_bank.py", str(tmp_path / "ccp"), str(tmp_path / "pool"), str(labels), str(out))
    assert "2 cut-outs from 1 of 2 labelled photos" in r.stderr
    bank = OccluderBank.load(out)
    assert sorted(c.alpha.shape[0] for c in bank.cutouts) == pytest.approx([50, 110], abs=3)
    assert {c.face_height for c in bank.cutouts} == {50.0}  # the face scored 0.9 sets the scale, not the 0.3 one


def test_count_misses_hand_computed(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))  # scripts/ is not a package
    from mine_hard_photos import count_misses

    labels = np.array([[0, 0, 100, 100], [200, 0, 300, 100], [400, 0, 404, 4]], np.float32)
    found = np.array([[10, 0, 110, 100]], np.float32)  # IoU with label 0: 9000 / 11000 = 0.82
    assert count_misses(labels, found, 1.0, 0.5, 10) == 1  # label 1 missed; label 2 is 4 px: not counted
    assert count_misses(labels, found, 0.05, 0.5, 10) == 0  # at 1/20 scale every label is under 10 px
    assert count_misses(labels, found, 1.0, 0.85, 10) == 2  # 0.82 < 0.85: label 0 missed too
    assert count_misses(labels, np.zeros((0, 4), np.float32), 1.0, 0.5, 1) == 3


def test_mine_hard_photos_then_read_pool(tmp_path):
    from featherface import FaceDetector
    from featherface.data.pool import read_image_weights, read_pool
    from featherface.core.geometry import iou_matrix

    shared_file("images/crowd_baseball.jpg")
    pool = tmp_path / "pool"
    (pool / "groups").mkdir(parents=True)
    (pool / "blank").mkdir()
    shutil.copy(shared_file("images/crowd_baseball.jpg"), pool / "groups" / "crowd.jpg")
    cv2.imwrite(str(pool / "blank" / "grey.png"), np.full((240, 320, 3), 128, np.uint8))
    found = FaceDetector.from_pretrained("nano").detect_arrays(cv2.imread(str(pool / "groups" / "crowd.jpg"))).boxes
    assert len(found) >= 15
    # crowd: two faces Nano finds and one made-up 60 px "face" in the photo's top-left corner,
    # which Nano does not find; grey: one made-up face, missed
    corner = [0.0, 0.0, 60.0, 60.0]
    assert iou_matrix(np.array([corner], np.float32), found).max() < 0.5
    identity = {"w_scale": 1.0, "h_scale": 1.0, "dx": 0.0, "dy": 0.0}
    labels = {"box_convention": identity, "images": {
        "groups/crowd.jpg": {"boxes": [found[0].tolist(), found[1].tolist(), corner]},
        "blank/grey.png": {"boxes": [[100, 80, 160, 150]]}}}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    out = tmp_path / "hard.json"
    _run("scripts/mine_hard_photos.py", str(pool), str(out), "--labels", str(tmp_path / "labels.json"),
         "--workers", "1", "--boost", "3", "--cap", "2")
    data = json.loads(out.read_text())
    assert data["misses"] == {"blank/grey.png": 1, "groups/crowd.jpg": 1}
    assert data["images"] == {"blank/grey.png": 2.5, "groups/crowd.jpg": 2.5}  # 1 + 3 * min(1, 2) / 2
    assert data["counts"]["photos_with_labels"] == 2 and data["counts"]["missed_faces"] == 2

    # the factors multiply the source weights: 2.5 -> 2 copies + 1 for a deterministic half
    weights = read_image_weights(out)
    entries, _ = read_pool(pool, tmp_path / "labels.json", {"blank": 2.0}, image_weights=weights)
    assert entries.count("blank/grey.png") == 5 and entries.count("groups/crowd.jpg") in (2, 3)
