"""The `featherface` command line, run in-process."""
import json
import shutil

import cv2
import numpy as np

from featherface.cli import main
from tests.conftest import shared_file


def test_info_prints_both_totals(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "592,371" in out and "344,254" in out and "GFLOPs" in out


def test_convert_and_detect_folder_with_corrupt_file(tmp_path, official_v1_path, capsys):
    assert main(["convert", str(official_v1_path), str(tmp_path / "v1.pt")]) == 0
    src = tmp_path / "imgs"
    src.mkdir()
    shutil.copy(shared_file("images/crowd_baseball.jpg"), src / "crowd.jpg")
    cv2.imwrite(str(src / "blank.png"), np.full((100, 120, 3), 200, np.uint8))
    (src / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    out = tmp_path / "out"
    rc = main(["detect", str(src), "--model", str(tmp_path / "v1.pt"), "--output", str(out)])
    assert rc == 1  # one file failed, the others were processed
    res = json.loads((out / "detections.json").read_text())
    by_name = {r["file"].split("/")[-1]: r for r in res["results"]}
    assert len(by_name["crowd.jpg"]["faces"]) >= 25
    assert by_name["blank.png"]["faces"] == []
    assert [f["file"].split("/")[-1] for f in res["failures"]] == ["broken.jpg"]
    assert (out / "crowd.jpg").is_file() and (out / "blank.jpg").is_file()
    assert "broken.jpg" in capsys.readouterr().err


def test_missing_source_is_a_clean_error(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "nothing*.jpg"), "--output", str(tmp_path)]) == 2
    assert "no images or videos found" in capsys.readouterr().err


def test_detect_video(tmp_path):
    crowd = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    crowd = cv2.resize(crowd, (512, 312))
    src = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (512, 312))
    for k in range(5):  # the photo sliding right by 4 px per frame
        writer.write(np.roll(crowd, 4 * k, axis=1))
    writer.release()
    out = tmp_path / "out"
    assert main(["detect", str(src), "--model", "nano", "--output", str(out)]) == 0
    res = json.loads((out / "detections.json").read_text())
    (rec,) = res["results"]
    assert rec["type"] == "video" and len(rec["frames"]) == 5
    counts = [len(f["faces"]) for f in rec["frames"]]
    assert min(counts) >= 10, counts
    # Detections follow the motion: the most confident face of frame 0 reappears 16 px to the right.
    best = max(rec["frames"][0]["faces"], key=lambda f: f["score"])
    centre = np.array(best["box"]).reshape(2, 2).mean(axis=0) + [16, 0]
    moved = min(np.linalg.norm(np.array(f["box"]).reshape(2, 2).mean(axis=0) - centre) for f in rec["frames"][4]["faces"])
    assert moved < 4, moved
    cap = cv2.VideoCapture(rec["output"])
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    ok, frame = cap.read()
    assert ok and frame.shape == (312, 512, 3)


def test_missing_optional_package_is_a_clean_error(monkeypatch, tmp_path, capsys):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] == "onnxruntime":
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    rc = main(["detect", str(shared_file("images/crowd_baseball.jpg")), "--backend", "onnxruntime", "--output", str(tmp_path)])
    assert rc == 2
    assert "needs the optional package 'onnxruntime'" in capsys.readouterr().err
