"""Training engine: kill -9 and resume gives the uninterrupted run's steps and weights; 2-process
torchrun keeps replicas identical; distillation refuses a broken teacher; CLI smoke runs."""
import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
import torch

from featherface.models.checkpoint import read_checkpoint, save_checkpoint
from featherface.cli import main
from featherface.core.files import read_image
from featherface.models import build_model
from featherface.training.config import TrainConfig
from tests.conftest import REPO, shared_file


def _train_cmd(root, labels, out, *extra):
    return [sys.executable, "-m", "featherface.cli", "train", "--images", str(root), "--labels", str(labels),
            "--arch", "nano", "--image-size", "96", "--batch-size", "2", "--epochs", "3", "--epoch-repeats", "4",
            "--workers", "0", "--save-every-steps", "1", "--milestones", "2", "--out", str(out), *extra]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env


def _steps(out):
    with open(out / "log.csv") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh)]


def test_kill9_then_resume_matches_uninterrupted_run(tiny_dataset, tmp_path):
    root, labels = tiny_dataset
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(_train_cmd(root, labels, full), check=True, env=_env(), capture_output=True)
    expected = 3 * (4 * 4 // 2)  # epochs x (images x repeats / batch)
    assert _steps(full) == list(range(1, expected + 1))

    proc = subprocess.Popen(_train_cmd(root, labels, cut), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (cut / "log.csv").is_file() and len(_steps(cut)) >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = read_checkpoint(cut / "last.pt")["step"]
    assert 0 < killed_at < expected

    subprocess.run(_train_cmd(root, labels, cut, "--resume"), check=True, env=_env(), capture_output=True)
    assert _steps(cut) == list(range(1, expected + 1))  # replayed steps were pruned from the log
    a, b = read_checkpoint(full / "last.pt"), read_checkpoint(cut / "last.pt")
    assert a["step"] == b["step"] == expected
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=1e-5, msg=k)


def test_torchrun_two_processes_keep_replicas_identical(tiny_dataset, tmp_path):
    root, labels = tiny_dataset
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "featherface.cli", "train", "--images", str(root), "--labels", str(labels), "--arch", "nano",
           "--image-size", "96", "--batch-size", "2", "--epochs", "1", "--epoch-repeats", "2", "--workers", "0",
           "--device", "cpu", "--out", str(out)]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    meta = read_checkpoint(out / "model.pt")["meta"]
    assert meta["world_size"] == 2
    assert meta["trained_steps"] == 4 * 2 // (2 * 2)  # images x repeats / (batch x processes)
    assert meta["replica_max_abs_diff"] == 0.0


def test_distill_refuses_a_broken_teacher(tmp_path, capsys):
    photos = shared_file("images/crowd_baseball.jpg").parent
    bad = tmp_path / "random_v1.pt"
    save_checkpoint(build_model("v1"), "v1", bad)  # untrained: finds no faces
    rc = main(["distill", "--images", str(photos), "--teacher", str(bad), "--check-image", str(photos / "crowd_baseball.jpg"),
               "--out", str(tmp_path / "run"), "--max-steps", "1"])
    assert rc == 2
    assert "Refusing to distil from a broken teacher" in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("teacher", ["weights/featherface_v1_official.pth", "peers/retinaface_mnet0.25_biubug6.pth"])
def test_distill_on_pseudo_labels_smoke(tmp_path, teacher):
    """Nano from the official V1, or from RetinaFace-MobileNet0.25 as an alternative teacher."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("crowd_baseball.jpg", "portraits/couple.jpg"):
        (photos / name.split("/")[-1]).symlink_to(shared_file(f"images/{name}"))
    out = tmp_path / "run"
    rc = main(["distill", "--images", str(photos), "--teacher", str(shared_file(teacher)), "--check-image",
               str(photos / "crowd_baseball.jpg"), "--image-size", "160", "--batch-size", "2", "--epochs", "1",
               "--epoch-repeats", "2", "--workers", "0", "--out", str(out), "--val-images", str(photos), "--eval-every", "1"])
    assert rc == 0
    with open(out / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    for r in rows:  # every term is logged and finite
        for k in ("total", "task", "box", "cls", "landmark", "kd", "feature", "lr"):
            assert float(r[k]) == float(r[k]) and abs(float(r[k])) < 1e6, (k, r[k])
    labels = (out / "pseudo_labels.json").read_text()
    assert "crowd_baseball.jpg" in labels
    assert (out / "eval.csv").read_text().startswith("1,2,")
    ck = read_checkpoint(out / "model.pt")
    assert ck["arch"] == "nano" and ck["meta"]["config"]["temperature"] == 4.0


def test_non_finite_loss_stops_before_touching_the_weights(tiny_dataset, tmp_path):
    from featherface.training.engine import NonFiniteLossError, setup, training_step
    from featherface.data.dataset import collate

    root, labels = tiny_dataset
    cfg = TrainConfig(arch="nano", mode="train", images=str(root), labels=str(labels), out=str(tmp_path / "run"),
                      image_size=96, batch_size=2, workers=0)
    st = setup(cfg)
    before = {k: v.detach().clone() for k, v in st.model.named_parameters()}
    images, targets = collate([st.dataset[0], st.dataset[1]])
    st.criterion = lambda *a, **k: {"total": torch.tensor(float("nan"), requires_grad=True), "box": torch.tensor(1.0)}
    with pytest.raises(NonFiniteLossError, match=r"step 1: the loss is nan .*last\.pt keeps the last good state"):
        training_step(st, images, targets)
    assert st.step == 0
    assert all(torch.equal(before[k], v) for k, v in st.model.named_parameters())  # no optimizer step


def test_init_backbone_copies_a_detector_backbone(official_v1_path, tmp_path):
    from featherface.models.featherface import backbone_of
    from featherface.training.engine import copy_backbone

    student = build_model("nano")
    assert copy_backbone(student, str(official_v1_path)) == "detector"
    from featherface.models.convert import load_official

    v1, _ = load_official(official_v1_path)
    for (k, a), (_, b) in zip(backbone_of(student).state_dict().items(), backbone_of(v1).state_dict().items()):
        assert torch.equal(a, b), k
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="neither a detector checkpoint nor MobileNetV1-0.25 ImageNet"):
        copy_backbone(student, str(bad))


def test_cosine_schedule_hand_values():
    from featherface.training.config import lr_factor

    cfg = TrainConfig(lr_schedule="cosine", warmup_epochs=1.0, epochs=5)
    assert lr_factor(0.5, cfg) == pytest.approx(0.5)  # warm-up
    assert lr_factor(1.0, cfg) == pytest.approx(1.0)
    assert lr_factor(3.0, cfg) == pytest.approx(0.01 + 0.99 * 0.5)  # half-way through the cosine
    assert lr_factor(5.0, cfg) == pytest.approx(0.01)
    assert lr_factor(2.0, cfg, total_epochs=3.0) == pytest.approx(0.01 + 0.99 * 0.5)


def test_constant_schedule_after_warmup():
    from featherface.training.config import lr_factor

    cfg = TrainConfig(lr_schedule="constant", warmup_epochs=0.5, epochs=5)
    assert lr_factor(0.25, cfg) == pytest.approx(0.5)
    assert lr_factor(0.5, cfg) == lr_factor(3.0, cfg) == lr_factor(100.0, cfg) == 1.0  # the end plays no part
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(images="x", labels="y", ema_decay=1.0).validate()
    with pytest.raises(ValueError, match="max_upscale"):
        TrainConfig(images="x", labels="y", max_upscale=-1.0).validate()
    with pytest.raises(ValueError, match="mask_prob"):
        TrainConfig(images="x", labels="y", mask_prob=1.5).validate()
    with pytest.raises(ValueError, match="occlude_prob"):
        TrainConfig(images="x", labels="y", occlude_prob=-0.1).validate()
    with pytest.raises(ValueError, match="mask_style"):
        TrainConfig(images="x", labels="y", mask_style="fancy").validate()
    with pytest.raises(ValueError, match="negative_prob"):
        TrainConfig(mode="distill", images="x", teacher="t", online_labels=True, negative_prob=1.0).validate()
    with pytest.raises(ValueError, match="min_negatives"):
        TrainConfig(mode="distill", images="x", teacher="t", min_negatives=-1).validate()
    with pytest.raises(ValueError, match="label_corrected_full needs label_corrected"):
        TrainConfig(mode="distill", images="x", teacher="t", label_corrected_full=True).validate()


@pytest.mark.parametrize("weights", [{"wider_sample": -1}, {"wider_sample": "4"}, {"wider_sample": True}])
def test_source_weights_from_a_yaml_config_are_checked(tmp_path, weights):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"mode": "distill", "images": "x", "teacher": "t", "source_weights": weights}))
    with pytest.raises(ValueError, match="source_weights"):
        TrainConfig.from_yaml(path).validate()
    weights = {"wider_sample": 4, "scut_head_b": 0.5, "caltech_webfaces": 0}  # ints, fractions and 0 are fine
    TrainConfig(mode="distill", images="x", teacher="t", source_weights=weights).validate()


def test_ema_is_the_hand_computed_average_and_survives_resume(tiny_dataset, tmp_path):
    """Step 1: the EMA is the weights after step 1 (its first update copies them). Resumed for a
    second step: EMA = d * w1 + (1 - d) * w2, parameters and BatchNorm statistics alike; model.pt
    holds the EMA weights."""
    root, labels = tiny_dataset
    out, d = tmp_path / "ema", 0.9
    args = ["train", "--images", str(root), "--labels", str(labels), "--arch", "nano", "--image-size", "96",
            "--batch-size", "2", "--epochs", "1", "--workers", "0", "--lr-schedule", "constant", "--warmup-epochs", "0",
            "--ema-decay", str(d), "--out", str(out)]
    assert main([*args, "--max-steps", "1"]) == 0
    w1 = read_checkpoint(out / "last.pt")["state_dict"]
    ema1 = read_checkpoint(out / "ema.pt")
    assert ema1["meta"]["ema_decay"] == d and ema1["meta"]["trained_steps"] == 1
    for k, v in w1.items():
        assert torch.equal(ema1["state_dict"][k], v), k
    assert main([*args, "--max-steps", "2", "--resume"]) == 0
    w2 = read_checkpoint(out / "last.pt")["state_dict"]
    ema2 = read_checkpoint(out / "model.pt")["state_dict"]
    ema_file = read_checkpoint(out / "ema.pt")["state_dict"]
    assert all(torch.equal(ema_file[k], v) for k, v in ema2.items())  # model.pt = the last ema.pt
    changed = 0
    for k, v in w2.items():
        if v.is_floating_point():
            assert torch.allclose(ema2[k], d * w1[k] + (1 - d) * v, atol=1e-6), k
            changed += not torch.equal(v, w1[k])
    assert changed > 10  # the second step did move the weights, so the check above means something


def test_online_label_distillation_smoke(tmp_path, official_v1_path, caplog):
    """Two steps of pool distillation with online teacher labels and the shared frozen backbone:
    the teacher's detections become targets (faces logged) and the frozen backbone stays V1's."""
    import shutil

    from featherface.models.convert import load_official
    from featherface.models.featherface import backbone_of

    pool = tmp_path / "pool" / "groups"
    pool.mkdir(parents=True)
    for name in ("crowd_baseball.jpg", "small_pair.jpg"):
        shutil.copy(shared_file(f"images/{name}"), pool / name)
    out = tmp_path / "run"
    # pool labels: a human file and a detector's (with scores; its only box is below the minimum score)
    h, w = read_image(pool / "small_pair.jpg").shape[:2]
    human, detector = tmp_path / "human.json", tmp_path / "detector.json"
    human.write_text(json.dumps({"images": {"groups/small_pair.jpg": {"boxes": [[0, 0, w, h]]}}}))
    detector.write_text(json.dumps({"images": {"groups/crowd_baseball.jpg": {"boxes": [[0, 0, 50, 50]], "scores": [0.5]}}}))
    caplog.set_level(logging.INFO, logger="featherface")
    assert main(["distill", "--images", str(pool.parent), "--online-labels", "--teacher", str(official_v1_path),
                 "--init-backbone", str(official_v1_path), "--check-image", str(pool / "crowd_baseball.jpg"),
                 "--out", str(out), "--batch-size", "2", "--image-size", "320", "--max-steps", "2",
                 "--freeze-backbone-steps", "5", "--workers", "0", "--mosaic-prob", "0",
                 "--zoom-out-prob", "1", "--pool-labels", str(human), str(detector), "--pool-label-min-score", "0.6",
                 "--label-corrected", "--label-corrected-full", "--max-upscale", "2",
                 "--mask-prob", "0.3", "--mask-style", "varied", "--occlude-prob", "0.5"]) == 0
    assert "2 photos -> 2 samples per pass" in caplog.text
    cfg = TrainConfig.from_yaml(out / "config.yaml")
    assert cfg.pool_labels == [str(human), str(detector)] and cfg.pool_label_min_score == 0.6 and cfg.label_corrected
    assert cfg.max_upscale == 2.0 and cfg.mask_prob == 0.3
    assert cfg.mask_style == "varied" and cfg.label_corrected_full and cfg.occlude_prob == 0.5
    with open(out / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2] and sum(int(float(r["faces"])) for r in rows) > 0
    # the human box covering the whole photo (zoomed out, so always in view) matches no teacher
    # face (IoU < 0.4), so it is added to the task targets
    assert sum(int(float(r["labels_added"])) for r in rows) >= 1
    assert sum(float(r["added_cls"]) for r in rows) > 0  # and learnt at the full weight
    student = read_checkpoint(out / "model.pt")["state_dict"]
    v1 = backbone_of(load_official(official_v1_path)[0]).state_dict()
    assert all(torch.equal(student[f"backbone.{k}"], v) for k, v in v1.items())


def test_openvino_teacher_gives_the_torch_teachers_losses(tmp_path, official_v1_path):
    """``--teacher-backend openvino``: the same first step (same seed, data and student) gives the
    same losses as the PyTorch teacher, to the graph's rounding; the teacher graph is kept in the
    run folder."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    import shutil

    pool = tmp_path / "pool" / "groups"
    pool.mkdir(parents=True)
    for name in ("crowd_baseball.jpg", "small_pair.jpg"):
        shutil.copy(shared_file(f"images/{name}"), pool / name)
    rows = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / backend
        assert main(["distill", "--images", str(pool.parent), "--online-labels", "--teacher", str(official_v1_path),
                     "--init-backbone", str(official_v1_path), "--check-image", str(pool / "crowd_baseball.jpg"),
                     "--out", str(out), "--batch-size", "2", "--image-size", "256", "--max-steps", "1",
                     "--freeze-backbone-steps", "0", "--workers", "0", "--teacher-backend", backend]) == 0
        with open(out / "log.csv") as fh:
            rows[backend] = next(csv.DictReader(fh))
    assert (tmp_path / "openvino" / "teacher.onnx").is_file() and not (tmp_path / "torch" / "teacher.onnx").exists()
    torch_row, ov_row = rows["torch"], rows["openvino"]
    assert int(float(torch_row["faces"])) > 0 and torch_row["faces"] == ov_row["faces"]
    for term in ("total", "task", "kd", "feature"):
        assert float(ov_row[term]) == pytest.approx(float(torch_row[term]), rel=1e-3, abs=1e-5), term
    with pytest.raises(ValueError, match="teacher_backend"):
        TrainConfig(mode="distill", images="x", teacher="t", teacher_backend="tensorrt").validate()
