"""The pool scripts end to end: a peer detector labels a tiny pool (resumably), the box-convention
measurement writes its map where ``featherface distill --pool-labels`` reads it, and the landmark
fine-tune trains on such labels (resumably)."""
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np

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


def _finetune(pool, labels, out, *extra: str) -> subprocess.CompletedProcess:
    return _run("scripts/finetune_landmarks.py", str(pool), str(labels), str(out), "--train", "all",
                "--photos-per-step", "2", "--look-share", "0.5", "--min-side", "48", "--save-every", "1", *extra)


def test_finetune_landmarks_resumes(tmp_path):
    """Two steps of the landmark fine-tune on one photo (RetinaFace's points as targets), resumed for a
    third, with the run recorded in the metadata; a run with another seed draws other samples."""
    import torch

    from featherface.models.checkpoint import read_checkpoint

    fixture = json.loads((REPO / "tests" / "fixtures" / "retinaface_crowd.json").read_text())
    pool = tmp_path / "pool"
    (pool / "groups").mkdir(parents=True)
    shutil.copy(shared_file("images/crowd_baseball.jpg"), pool / "groups" / "crowd.jpg")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"images": {"groups/crowd.jpg": {k: fixture[k] for k in ("boxes", "scores", "landmarks")}}}))

    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    _finetune(pool, labels, a, "--steps", "2")
    assert torch.load(a.with_name("a.pt.state.pt"), weights_only=False)["step"] == 2
    two_steps = read_checkpoint(a)["state_dict"]
    resumed = _finetune(pool, labels, a, "--steps", "3")
    assert "resumed at step 2" in resumed.stderr
    assert torch.load(a.with_name("a.pt.state.pt"), weights_only=False)["step"] == 3
    stages = read_checkpoint(a)["meta"]["landmark_finetune"]
    assert stages[-1]["steps"] == 3 and stages[-1]["trained"] == "all" and "seed" not in stages[-1]
    _finetune(pool, labels, b, "--steps", "2", "--seed", "1")
    assert read_checkpoint(b)["meta"]["landmark_finetune"][-1]["seed"] == 1
    other = read_checkpoint(b)["state_dict"]
    assert any(not torch.equal(two_steps[k], other[k]) for k in other)  # the same two steps, other samples
