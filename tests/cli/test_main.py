"""The `featherface` command line, run in-process."""
import json
import shutil

import cv2
import numpy as np
import pytest

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
    res = json.loads((out / "run.json").read_text())
    by_name = {r["file"].split("/")[-1]: r for r in res["results"]}
    assert len(by_name["crowd.jpg"]["faces"]) >= 25
    assert by_name["blank.png"]["faces"] == []
    assert [f["file"].split("/")[-1] for f in res["failures"]] == ["broken.jpg"]
    assert (out / "crowd.jpg").is_file() and (out / "blank.png").is_file()  # same names as the inputs
    assert "broken.jpg" in capsys.readouterr().err


def test_missing_source_is_a_clean_error(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "nothing*.jpg"), "--output", str(tmp_path)]) == 2
    assert "no images or videos found" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "missing.jpg"), "--output", str(tmp_path)]) == 2
    assert "not found: " in capsys.readouterr().err


def test_outputs_never_replace_inputs_or_each_other(tmp_path, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    crowd = cv2.imread(str(shared_file("images/crowd_baseball.jpg")))
    for ext in ("jpg", "png", "jpeg"):
        cv2.imwrite(str(src / f"photo.{ext}"), crowd)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    # -o the input folder itself: refused, nothing written
    assert main(["detect", str(src), "--output", str(src)]) == 2
    assert "every input lies inside the output folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    # -o pointing at an existing FILE: one-line error
    assert main(["detect", str(src), "--output", str(src / "photo.jpg")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    # a folder inside the inputs: three distinct outputs, the inputs untouched, outputs not re-read
    out = src / "annotated"
    assert main(["detect", str(src), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.suffix != ".json" and p.suffix != ".jsonl") == \
        ["photo.jpeg", "photo.jpg", "photo.png"]
    assert main(["detect", str(src), "--output", str(out), "--resume"]) == 0
    assert "3 already done" in capsys.readouterr().out
    res = json.loads((out / "run.json").read_text())
    assert len(res["results"]) == 3 and len({r["output"] for r in res["results"]}) == 3


def test_damaged_files_are_failures_and_the_rest_is_processed(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    data = shared_file("images/crowd_baseball.jpg").read_bytes()
    (src / "a_truncated.jpg").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    for i in range(2000, len(flipped) - 2000, 997):
        flipped[i] ^= 0x55
    (src / "b_bitflip.jpg").write_bytes(bytes(flipped))
    (src / "c_good.jpg").write_bytes(data)
    out = tmp_path / "out"
    assert main(["detect", str(src), "--output", str(out), "--no-draw"]) == 1
    res = json.loads((out / "run.json").read_text())
    assert sorted(f["file"].rsplit("/", 1)[1] for f in res["failures"]) == ["a_truncated.jpg", "b_bitflip.jpg"]
    assert all("damaged image data" in f["error"] for f in res["failures"])
    assert [r["file"].rsplit("/", 1)[1] for r in res["results"]] == ["c_good.jpg"]
    err = capsys.readouterr().err
    assert "a_truncated.jpg" in err and "b_bitflip.jpg" in err


def test_results_stream_and_resume_skips_finished_files(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    small = cv2.resize(cv2.imread(str(shared_file("images/crowd_baseball.jpg"))), (320, 195))
    for k in range(3):
        cv2.imwrite(str(src / f"img{k}.jpg"), small)
    out = tmp_path / "out"
    assert main(["detect", str(src), "--output", str(out), "--no-draw"]) == 0
    lines = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert [r["type"] for r in lines] == ["settings", "image", "image", "image"]
    # simulate an interruption after the first image: keep two lines, plus a line cut mid-write
    (out / "run.jsonl").write_text("\n".join(json.dumps(r) for r in lines[:2]) + "\n" + '{"type": "ima')
    assert main(["detect", str(src), "--output", str(out), "--no-draw", "--resume"]) == 0
    assert "1 already done (--resume)" in capsys.readouterr().out
    res = json.loads((out / "run.json").read_text())
    assert sorted(r["file"].rsplit("/", 1)[1] for r in res["results"]) == ["img0.jpg", "img1.jpg", "img2.jpg"]


def test_pixel_limit_is_a_per_file_failure(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "big.png"), np.zeros((400, 500, 3), np.uint8))
    cv2.imwrite(str(src / "small.png"), np.zeros((40, 50, 3), np.uint8))
    out = tmp_path / "out"
    assert main(["detect", str(src), "--output", str(out), "--long-side", "0", "--max-pixels", "10000", "--no-draw"]) == 1
    res = json.loads((out / "run.json").read_text())
    (fail,) = res["failures"]
    assert "big.png" in fail["error"] and "--max-pixels" in fail["error"]
    assert [r["file"].rsplit("/", 1)[1] for r in res["results"]] == ["small.png"]


@pytest.mark.parametrize("argv, message", [
    (["info", "--size", "0", "0"], "--size must be at least 32"),
    (["detect", "x.jpg", "--threads", "-3"], "argument --threads: must be >= 0"),
    (["detect", "x.jpg", "--device", "cuda"], "no CUDA provider"),
    (["detect", "x.jpg", "--device", "cdua"], "argument --device: invalid choice"),
    (["detect", "x.jpg", "--long-side", "1"], "must be 0 (original size) or in 32..8192"),
    (["detect", "x.jpg", "--max-pixels", "0"], "must be >= 1"),
    (["detect", "x.jpg", "--score-threshold", "1.5"], "must be in [0, 1]"),
    (["export", "--size", "0", "0", "-o", "m.onnx"], "argument --size: must be >= 32"),
    # an unquoted glob the shell expanded into several files
    (["detect", "x.jpg", "x.jpg"], "unrecognized arguments: x.jpg; one SOURCE per run: quote a glob"),
])
def test_bad_options_are_one_line_errors(tmp_path, argv, message, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cv2.imwrite(str(tmp_path / "x.jpg"), np.zeros((40, 40, 3), np.uint8))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


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
    res = json.loads((out / "run.json").read_text())
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
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # imports of it now fail
    rc = main(["detect", str(shared_file("images/crowd_baseball.jpg")), "--backend", "onnxruntime", "--output", str(tmp_path)])
    assert rc == 2
    assert "needs the optional package 'onnxruntime': pip install onnxruntime" in capsys.readouterr().err


def test_model_v1_falls_back_to_the_official_checkpoint(monkeypatch):
    from featherface.cli.common import model_weights

    official = shared_file("weights/featherface_v1_official.pth")
    monkeypatch.setenv("FEATHERFACE_SHARED", str(official.parents[1]))
    monkeypatch.setenv("FEATHERFACE_WEIGHTS", "/nonexistent")
    assert model_weights("v1") == str(official)
    assert model_weights("nano") == "nano"


def test_no_box_voting_flag_gives_the_greedy_nms_boxes(tmp_path):
    """``detect`` votes by default and records it; ``--no-box-voting`` gives exactly the boxes of
    ``FaceDetector(box_voting=False)``."""
    from featherface import FaceDetector
    from featherface.core.files import read_image

    img = shared_file("images/crowd_baseball.jpg")
    boxes = {}
    for flag, voting in (([], True), (["--no-box-voting"], False)):
        out = tmp_path / str(voting)
        assert main(["detect", str(img), "--output", str(out), "--no-draw", *flag]) == 0
        settings, result = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
        assert settings["box_voting"] is voting
        boxes[voting] = np.array([f["box"] for f in result["faces"]])
        direct = FaceDetector.from_pretrained("nano", box_voting=voting).detect_arrays(read_image(img))
        np.testing.assert_allclose(boxes[voting], direct.boxes, atol=0.01)  # the JSON rounds to 0.01 px
    # same faces (voting moves boxes, never adds or drops one), some boxes moved
    assert boxes[True].shape == boxes[False].shape and np.abs(boxes[True] - boxes[False]).max() > 0.5


def test_source_weights_flag_sets_the_sampling_table(capsys):
    from featherface.cli import build_parser
    from featherface.cli.train import _config_from_args

    args = build_parser().parse_args(["distill", "--images", "pool", "--online-labels", "--source-weights",
                                      "masked_faces_rwmfd=4", "caltech_webfaces=0.5"])
    cfg = _config_from_args(args, "distill")
    assert cfg.source_weights == {"masked_faces_rwmfd": 4.0, "caltech_webfaces": 0.5}
    assert _config_from_args(build_parser().parse_args(["distill", "--images", "pool"]), "distill").source_weights is None
    for bad in ("rwmfd", "rwmfd=x", "=2", "rwmfd=-1"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["distill", "--source-weights", bad])
        assert "expected SOURCE=WEIGHT" in capsys.readouterr().err


def test_contradictory_batch_flags_are_refused(tmp_path, capsys):
    """--resume with --overwrite, and --retry-failed without --resume, exit 2 in one line before any work."""
    out = tmp_path / "out"
    assert main(["detect", "--example", "--output", str(out), "--resume", "--overwrite"]) == 2
    assert main(["detect", "--example", "--output", str(out), "--retry-failed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "give one of them" in err[0] and "add --resume" in err[1]
    assert not out.exists()
    assert main(["anonymize", "--example", "--output", str(out), "--no-draw"]) == 2  # not an anonymize option


def test_python_dash_m_featherface(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "featherface", "detect", "--example", "--output", str(tmp_path / "o"), "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "astronaut.jpg").is_file()


def test_out_of_range_port_and_colour_are_one_line_errors(capsys):
    assert main(["web", "--port", "80000"]) == 2
    assert main(["anonymize", "--example", "--color", "300", "0", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "0..65535" in err[0] and "0..255" in err[1]


def test_crop_help_offers_images_only():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["crop", "--help"]) == 0
    text = " ".join(out.getvalue().split())
    assert "quoted glob pattern (images only)" in text and "pattern, or video" not in text


def test_huge_sizes_are_refused_in_one_line(tmp_path, capsys):
    assert main(["detect", "--example", "--output", str(tmp_path / "a"), "--long-side", "100000"]) == 2
    assert main(["crop", "--example", "--output", str(tmp_path / "b"), "--align", "--size", "112000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "8192" in err[0] and "1120" in err[1]


def test_every_option_and_argument_has_help():
    """`--help` explains everything it lists (each command's own options included)."""
    import argparse

    from featherface.cli import build_parser

    def silent(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    yield from silent(sub, f"{name} {command}")
            elif action.help is None:
                yield f"{name} {'/'.join(action.option_strings) or action.dest}"

    assert list(silent(build_parser(), "featherface")) == []


def test_detect_records_the_second_look_setting(tmp_path):
    """`--no-refine-landmarks` gives the first look's points, and the records say which was used."""
    import json

    from featherface.core.weights import EXAMPLE_IMAGE

    runs = {}
    for flag in ("--refine-landmarks", "--no-refine-landmarks"):
        out = tmp_path / flag
        assert main(["-q", "detect", str(EXAMPLE_IMAGE), "--output", str(out), "--no-draw", flag]) == 0
        runs[flag] = json.loads((out / "run.json").read_text())
    first, second = (runs[f] for f in ("--no-refine-landmarks", "--refine-landmarks"))
    assert second["settings"]["refine_landmarks"] is True and first["settings"]["refine_landmarks"] is False
    face = lambda run: run["results"][0]["faces"][0]  # noqa: E731
    assert face(first)["box"] == face(second)["box"] and face(first)["landmarks"] != face(second)["landmarks"]
