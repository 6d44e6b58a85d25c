"""The pool-labelling scripts end to end: a peer detector labels a tiny pool (resumably), and the
box-convention measurement writes its map where ``featherface distill --pool-labels`` reads it."""
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

