"""Shared fixtures. Inputs from ``../shared`` (or $FEATHERFACE_SHARED) are never copied into the
project; tests that need them skip with the reason when the folder is absent."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FEATHERFACE_SHARED", REPO.parent / "shared"))


def shared_file(rel: str) -> Path:
    """Path of a file under shared/, or skip the calling test with a clear reason."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"needs {path} (shared inputs absent; set FEATHERFACE_SHARED to the shared/ folder)")
    return path


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def official_v1_path() -> Path:
    return shared_file("weights/featherface_v1_official.pth")


@pytest.fixture(scope="session")
def v1_checkpoint(tmp_path_factory, official_v1_path) -> Path:
    """The official V1 weights converted to this project's format (once per session)."""
    from featherface.models.convert import convert_official_v1

    dst = tmp_path_factory.mktemp("ckpt") / "v1.pt"
    convert_official_v1(official_v1_path, dst)
    return dst


@pytest.fixture(scope="session")
def v1_model(v1_checkpoint):
    from featherface.models.checkpoint import load_model

    return load_model(v1_checkpoint)[0]



@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Four 120x160 images with bright 'faces' and a RetinaFace label.txt (one face without
    landmarks). Returns ``(image_root, label_file)``."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    lines = []
    for k in range(4):
        img = rng.integers(0, 60, (120, 160, 3), dtype=np.uint8)
        name = f"ev/img{k}.jpg"
        lines.append(f"# {name}")
        for j in range(2):
            x, y, s = 10 + 70 * j + 3 * k, 20 + 10 * k, 40
            cv2.rectangle(img, (x, y), (x + s, y + s), (200, 180, 160), -1)
            if j == 0:
                pts = [(x + 12, y + 14), (x + 28, y + 14), (x + 20, y + 22), (x + 14, y + 30), (x + 26, y + 30)]
                lines.append(f"{x} {y} {s} {s} " + " ".join(f"{px} {py} 0.0" for px, py in pts) + " 0.9")
            else:
                lines.append(f"{x} {y} {s} {s} " + " ".join(["-1"] * 15) + " -1")
        (root / "ev").mkdir(exist_ok=True)
        cv2.imwrite(str(root / name), img)
    labels = root / "label.txt"
    labels.write_text("\n".join(lines) + "\n")
    return root, labels
