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
