"""``featherface evaluate`` and ``featherface check-data`` end to end, in-process."""
import json
import shutil

import cv2
import numpy as np
import pytest

from featherface.cli import main
from featherface.data.annotations import load_mat_ground_truth
from featherface.evaluation.widerface import write_prediction_file
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def gt_dir():
    return shared_file("widerface/ground_truth")


def test_evaluate_prediction_folder(tmp_path, gt_dir, capsys):
    gt = load_mat_ground_truth(gt_dir)
    # Perfect predictions (every ground-truth face, score 1) on every image. AP is 1 up to the
    # official protocol's own quirks: a duplicated ground-truth box (0--Parade has one) can only
    # be matched once, because each prediction goes to its highest-IoU face even when recalled.
    for event, name, e, i in gt:
        boxes = gt.boxes[e][i]
        write_prediction_file(tmp_path / "pred" / event / f"{name}.txt", f"{name}.jpg",
                              np.column_stack([boxes, np.ones(len(boxes))]))
    out = tmp_path / "eval"
    assert main(["evaluate", "--predictions", str(tmp_path / "pred"), "--gt", str(gt_dir), "--output", str(out)]) == 0
    report = json.loads((out / "ap.json").read_text())
    assert all(0.9998 < report["ap"][s] <= 1.0 for s in ("easy", "medium", "hard")), report["ap"]
    assert (out / "pr_curves.png").is_file()
    assert "Easy" in capsys.readouterr().out


def test_evaluate_runs_a_model_and_reports_missing_images(tmp_path, gt_dir, capsys):
    gt = load_mat_ground_truth(gt_dir)
    event, name, _, _ = next(iter(gt))
    images = tmp_path / "WIDER_val" / "images"
    (images / event).mkdir(parents=True)
    shutil.copy(shared_file("images/crowd_baseball.jpg"), images / event / f"{name}.jpg")
    out = tmp_path / "eval"
    assert main(["evaluate", "--images", str(images), "--gt", str(gt_dir), "--output", str(out), "--model", "nano"]) == 0
    captured = capsys.readouterr()
    pred = (out / "predictions" / event / f"{name}.txt").read_text().splitlines()
    assert pred[0] == f"{name}.jpg" and int(pred[1]) == len(pred) - 2 > 0
    report = json.loads((out / "ap.json").read_text())
    assert report["protocol"]["resize"] == "original size"
    assert report["protocol"]["score_threshold"] == 0.02
    assert report["protocol"]["images_missing_from_folder"] == gt.num_images - 1
    assert "protocol: original size" in captured.out
    assert f"{gt.num_images - 1} of {gt.num_images} validation images missing from {images}" in captured.out


def test_evaluate_without_inputs_is_a_clean_error(tmp_path, gt_dir, capsys):
    assert main(["evaluate", "--gt", str(gt_dir), "--output", str(tmp_path)]) == 2
    assert "--images" in capsys.readouterr().err


def test_check_data_reports_problems_with_locations(tmp_path, capsys):
    root = tmp_path / "images"
    (root / "ev").mkdir(parents=True)
    cv2.imwrite(str(root / "ev" / "ok.jpg"), np.zeros((100, 100, 3), np.uint8))
    (root / "ev" / "bad.jpg").write_bytes(b"not an image")
    labels = tmp_path / "label.txt"
    labels.write_text("# ev/ok.jpg\n10 10 20 20\n# ev/bad.jpg\n1 1 5 5\n# ev/gone.jpg\n1 1 5 5\n")
    assert main(["check-data", str(labels), "--images", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{labels}:3 (ev/bad.jpg): image cannot be decoded" in out
    assert f"{labels}:5 (ev/gone.jpg): image file missing" in out
    labels.write_text("# ev/ok.jpg\n10 10 20 20\n")
    assert main(["check-data", str(labels), "--images", str(root)]) == 0


def test_check_data_malformed_line(tmp_path, capsys):
    labels = tmp_path / "label.txt"
    labels.write_text("# a.jpg\n1 2 three 4\n1 2 3 4\n# b.jpg\n1 2 -3 4\n5 5 5\n")
    assert main(["check-data", str(labels)]) == 1
    out = capsys.readouterr().out
    # every malformed line is listed, not only the first
    assert f"{labels}:2: expected numbers" in out
    assert f"{labels}:5: negative box size" in out
    assert f"{labels}:6: expected 4 (box)" in out
    assert "3 problem(s)" in out


def test_evaluate_labels_voc_end_to_end(tmp_path, v1_checkpoint, capsys):
    """V1 scored against labels that are its own detections (score >= 0.5) scores AP 1 over the
    faces it labelled; a labelled image that is absent is refused (exit 2), or with --skip-missing
    left out of the scores, and a damaged one counts as undetected (exit 1)."""
    from featherface.core.detector import FaceDetector

    photos = [p for p in sorted(shared_file("images/portraits").glob("*.jpg")) if cv2.imread(str(p)) is not None][:3]
    det = FaceDetector.from_pretrained(v1_checkpoint, score_threshold=0.5)
    images, ann = tmp_path / "images", tmp_path / "voc"
    images.mkdir()
    ann.mkdir()
    n_faces = 0
    for p in photos + [tmp_path / "absent.jpg"]:
        if p.is_file():
            shutil.copy(p, images / p.name)
            boxes = det.detect_arrays(cv2.imread(str(p))).boxes
        else:
            boxes = np.array([[10, 10, 60, 60]], np.float32)
        n_faces += len(boxes)
        objs = "".join(f"<object><name>face</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                       f"<ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
        (ann / f"{p.stem}.xml").write_text(f"<annotation><filename>{p.name}</filename>{objs}</annotation>")
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(v1_checkpoint), "--images", str(images), "--labels", str(ann), "--output", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "1 of 4 labelled images are missing" in err and "absent.jpg" in err and "--skip-missing" in err
    assert not (out / "result.json").exists()
    assert main([*args, "--skip-missing"]) == 0
    capsys.readouterr()
    assert json.loads((out / "result.json").read_text())["ap"] == pytest.approx(1.0)  # the absent image left out
    (images / "absent.jpg").write_bytes(b"not a jpeg")  # there, but damaged: no detections, exit 1
    assert main(args) == 1
    result = json.loads((out / "result.json").read_text())
    text = capsys.readouterr()
    assert "1 of 4 labelled images unreadable" in text.err and "absent.jpg" in text.err
    text = text.out
    # every labelled face but the damaged image's one is found first in the ranking
    assert result["num_faces"] == n_faces
    assert result["recall"] == pytest.approx((n_faces - 1) / n_faces)
    assert result["ap"] == pytest.approx((n_faces - 1) / n_faces, abs=1e-6)
    assert result["nme"] is None and result["protocol"]["resize"] == "long side resized to 640"
    assert (out / "pr_curve.png").is_file()
    # image resamples: a third of them leave the absent image out (AP 1), others draw it more often
    lo, hi = result["ap_ci95"]
    assert lo < result["ap"] < hi == pytest.approx(1.0) and result["bootstrap"]["resamples"] == 1000
    assert "AP 95 % interval" in text


def test_evaluate_labels_malformed_is_one_line(tmp_path, capsys):
    (tmp_path / "labels.json").write_text('{"images": {"a.jpg": {"boxes": [[1, 2]]}}}')
    assert main(["evaluate", "--images", str(tmp_path), "--labels", str(tmp_path / "labels.json"),
                 "--model", "nano"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "labels.json" in err and "box 0" in err
    # coordinates as strings are a labelling mistake, named where they are
    (tmp_path / "labels.json").write_text('{"images": {"a.jpg": {"boxes": [[1, 2, 30, 40], ["1", "x", 3, 4]]}}}')
    assert main(["evaluate", "--images", str(tmp_path), "--labels", str(tmp_path / "labels.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and 'images["a.jpg"]: box 1 must be a list of 4 numbers' in err


def test_evaluate_predictions_rejects_nan_and_empty_folders(tmp_path, gt_dir, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", "--predictions", str(empty), "--gt", str(gt_dir), "--output", str(tmp_path / "o")]) == 2
    assert "no prediction files" in capsys.readouterr().err
    bad = tmp_path / "bad" / "0--Parade"
    bad.mkdir(parents=True)
    (bad / "x.txt").write_text("x.jpg\n1\n1 2 3 4 nan\n")
    assert main(["evaluate", "--predictions", str(tmp_path / "bad"), "--gt", str(gt_dir), "--output", str(tmp_path / "o")]) == 2
    assert "x.txt:3: non-finite value" in capsys.readouterr().err


def test_evaluate_labels_compare_two_models(tmp_path, v1_checkpoint, capsys):
    """``--compare``: the second model is scored on the same images with the same options, and the
    difference gets its paired interval; V1 against labels that are its own detections is the
    upper bound, so Nano's difference is <= 0 on every resample."""
    from featherface.core.detector import FaceDetector

    photos = [p for p in sorted(shared_file("images/portraits").glob("*.jpg")) if cv2.imread(str(p)) is not None][:3]
    det = FaceDetector.from_pretrained(v1_checkpoint, score_threshold=0.5)
    images = tmp_path / "images"
    images.mkdir()
    labels = {}
    for p in photos:
        shutil.copy(p, images / p.name)
        labels[p.name] = {"boxes": det.detect_arrays(cv2.imread(str(p))).boxes.tolist()}
    (tmp_path / "labels.json").write_text(json.dumps({"images": labels}))
    common = ["--images", str(images), "--labels", str(tmp_path / "labels.json")]
    out = tmp_path / "cmp"
    assert main(["evaluate", "--model", "nano", "--compare", str(v1_checkpoint), *common, "--output", str(out),
                 "--bootstrap", "200"]) == 0
    result = json.loads((out / "result.json").read_text())
    c = result["compare"]
    assert c["model"] == str(v1_checkpoint) and c["ap"] == pytest.approx(1.0) and c["threshold"] == 0.5
    assert c["ap_difference"] == pytest.approx(result["ap"] - 1.0)
    lo, hi = c["ap_difference_ci95"]
    assert lo <= c["ap_difference"] + 1e-9 and hi <= 1e-9  # Nano cannot beat V1 on V1's own boxes
    assert result["bootstrap"]["resamples"] == 200
    assert f"--compare {v1_checkpoint}: AP 1.0000" in capsys.readouterr().out
    # the same weights twice, a negative resample count, --compare without --labels: one-line errors
    assert main(["evaluate", "--model", "nano", "--compare", "nano", *common, "--output", str(out)]) == 2
    assert main(["evaluate", "--model", "nano", *common, "--bootstrap", "-1", "--output", str(out)]) == 2
    assert main(["evaluate", "--model", "nano", "--compare", "v1", "--predictions", str(tmp_path),
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is the --model itself" in err and "--bootstrap must be >= 0" in err and "works with --labels" in err


def test_check_data_decodes_as_strictly_as_detect(tmp_path, capsys):
    """A truncated JPEG that OpenCV half-decodes (and detect refuses) is a problem for check-data."""
    root = tmp_path / "images"
    root.mkdir()
    data = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8))[1].tobytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 2])
    labels = tmp_path / "label.txt"
    labels.write_text("# cut.jpg\n10 10 20 20\n")
    assert main(["check-data", str(labels), "--images", str(root)]) == 1
    assert "damaged image data" in capsys.readouterr().out


def test_evaluate_refuses_a_folder_without_the_labelled_images(tmp_path, capsys):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"images": {"a.jpg": {"boxes": [[1, 1, 20, 20]]}, "b.jpg": {"boxes": []}}}))
    (tmp_path / "elsewhere").mkdir()
    out = tmp_path / "eval"
    args = ["evaluate", "--labels", str(labels), "--output", str(out), "--images"]
    assert main([*args, str(tmp_path / "elsewhere")]) == 2
    err = capsys.readouterr().err
    assert "holds no files" in err and "Traceback" not in err and not (out / "result.json").exists()
    (tmp_path / "elsewhere" / "c.jpg").write_bytes(b"x")
    assert main([*args, str(tmp_path / "elsewhere")]) == 2
    assert "holds none of the 2 images" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "nowhere")]) == 2
    assert "--images " + str(tmp_path / "nowhere") + ": no such folder" in capsys.readouterr().err
    assert main([*args, str(labels)]) == 2
    assert "not a folder" in capsys.readouterr().err and not (out / "result.json").exists()


def test_evaluate_checks_the_output_folder_before_any_work(tmp_path, gt_dir, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["evaluate", "--gt", str(gt_dir), "--images", str(tmp_path), "--output", str(blocker)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_evaluate_scores_landmarks_with_the_second_look_when_labels_have_points(tmp_path, capsys):
    """Labels with five points are compared with the shipped landmarks (second look); labels with
    none skip it (boxes only are scored)."""
    from featherface.core.detector import FaceDetector
    from featherface.core.weights import EXAMPLE_IMAGE

    (tmp_path / "images").mkdir()
    shutil.copy(EXAMPLE_IMAGE, tmp_path / "images" / "a.jpg")
    d = FaceDetector.from_pretrained("nano").detect_arrays(cv2.imread(str(EXAMPLE_IMAGE)))  # second look
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"images": {"a.jpg": {"boxes": d.boxes.tolist(),
                                                      "landmarks": [p.reshape(-1).tolist() for p in d.landmarks]}}}))
    nme = {}
    for flag in ("--refine-landmarks", "--no-refine-landmarks"):
        out = tmp_path / flag
        assert main(["evaluate", "--images", str(tmp_path / "images"), "--labels", str(labels), "--bootstrap", "0",
                     "--output", str(out), flag]) == 0
        result = json.loads((out / "result.json").read_text())
        nme[flag] = result["nme"]
        assert result["protocol"]["refine_landmarks"] is (flag == "--refine-landmarks")
    assert nme["--refine-landmarks"] < 0.01 < nme["--no-refine-landmarks"]
    labels.write_text(json.dumps({"images": {"a.jpg": {"boxes": d.boxes.tolist()}}}))
    assert main(["evaluate", "--images", str(tmp_path / "images"), "--labels", str(labels), "--bootstrap", "0",
                 "--output", str(tmp_path / "boxes")]) == 0
    assert json.loads((tmp_path / "boxes" / "result.json").read_text())["protocol"]["refine_landmarks"] is False
