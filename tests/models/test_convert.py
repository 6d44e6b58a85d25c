"""Official V1 checkpoint -> our format: strict, safe to load, reproduces the golden outputs."""
import pytest
import torch

from featherface.models.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from featherface.core.constants import MEAN_BGR
from featherface.models.convert import clean_official_state_dict, load_official_v1
from featherface.models import build_model
from tests.conftest import shared_file


def test_golden_v1_outputs(v1_model):
    golden = torch.load(shared_file("golden/v1_reference_outputs.pt"), map_location="cpu", weights_only=True)
    img = golden["input_bgr_uint8"]
    assert tuple(img.shape) == (312, 512, 3)
    x = (img.float() - torch.tensor(MEAN_BGR)).permute(2, 0, 1)[None]
    with torch.no_grad():
        loc, conf, landmark_deltas = v1_model(x)
    assert (loc - golden["loc"]).abs().max() < 1e-3
    assert (conf.softmax(-1) - golden["conf_softmax"]).abs().max() < 1e-3
    assert (landmark_deltas - golden["landmarks"]).abs().max() < 1e-3


def test_converted_checkpoint_is_weights_only_and_strict(v1_checkpoint):
    raw = torch.load(v1_checkpoint, map_location="cpu", weights_only=True)
    assert raw["arch"] == "v1" and raw["preprocess"]["mean"] == list(MEAN_BGR)
    assert not any(k.endswith(("total_ops", "total_params")) for k in raw["state_dict"])
    assert len(raw["meta"]["source_sha256"]) == 64


def test_official_load_is_strict(official_v1_path):
    state = torch.load(official_v1_path, map_location="cpu", weights_only=True)
    cleaned, dropped = clean_official_state_dict(state)
    assert dropped and all(k.endswith(("total_ops", "total_params")) for k in dropped)
    del cleaned["ssh1.conv3X3.0.offset_conv.weight"]
    model = build_model("v1")
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(cleaned, strict=True)


def test_official_converter_rejects_other_weights(tmp_path):
    # A Nano state_dict is not silently accepted as V1 (the reference's strict=False bug).
    torch.save(build_model("nano").state_dict(), tmp_path / "nano_state.pth")
    with pytest.raises(CheckpointError, match="does not match the v1 architecture"):
        load_official_v1(tmp_path / "nano_state.pth")


def test_mismatched_weights_rejected(tmp_path):
    ckpt = tmp_path / "nano.pt"
    save_checkpoint(build_model("nano"), "nano", ckpt)
    raw = torch.load(ckpt, weights_only=True)
    raw["arch"] = "v1"
    torch.save(raw, tmp_path / "lie.pt")
    with pytest.raises(CheckpointError, match="do not match architecture 'v1'"):
        load_model(tmp_path / "lie.pt")


def test_foreign_and_missing_files(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a FeatherFace checkpoint"):
        read_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot be read"):
        read_checkpoint(tmp_path / "junk.pt")


def test_checkpoint_saved_on_cuda_loads_on_cpu(tmp_path, monkeypatch):
    """A checkpoint whose storages are tagged 'cuda:0' (as torch.save records tensors saved from
    a GPU) loads on a CPU-only machine. On a machine without CUDA the tag is forged with a
    serialization tagger; plain torch.load without map_location would fail on it."""
    model = build_model("nano")
    path = tmp_path / "gpu.pt"
    if torch.cuda.is_available():
        save_checkpoint(model.cuda(), "nano", path)
        raw = torch.load(path, weights_only=True, map_location="cuda")
        raw["state_dict"] = {k: v.cuda() for k, v in raw["state_dict"].items()}
        torch.save(raw, path)
    else:
        registry = list(torch.serialization._package_registry)
        torch.serialization.register_package(0, lambda obj: "cuda:0" if obj.device.type == "cpu" else None,
                                             lambda obj, loc: None)
        try:
            save_checkpoint(model, "nano", path)
        finally:
            monkeypatch.setattr(torch.serialization, "_package_registry", registry)
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    loaded, ckpt = load_model(path)
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], model.cpu().eval()(x)[0])


def test_checkpoint_with_the_old_landmark_head_name_loads(tmp_path):
    # Nano checkpoints written before the rename call the landmark conv "ldm"
    model = build_model("nano").eval()
    ckpt = tmp_path / "old.pt"
    save_checkpoint(model, "nano", ckpt)
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    raw["state_dict"] = {k.replace(".landmark.", ".ldm."): v for k, v in raw["state_dict"].items()}
    assert sum(".ldm." in k for k in raw["state_dict"]) == 6  # weight + bias of 3 heads
    torch.save(raw, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")[0].eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(loaded(x), model(x)):
            assert torch.equal(a, b)
