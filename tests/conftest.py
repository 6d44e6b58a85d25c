"""Shared fixtures. Inputs from ``../shared`` (or $FEATHERFACE_SHARED) are never copied into the
project; tests that need them skip with the reason when the folder is absent."""
from __future__ import annotations

import os
from pathlib import Path

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
    from featherface.convert import convert_official_v1

    dst = tmp_path_factory.mktemp("ckpt") / "v1.pt"
    convert_official_v1(official_v1_path, dst)
    return dst


@pytest.fixture(scope="session")
def v1_model(v1_checkpoint):
    from featherface.checkpoint import load_model

    return load_model(v1_checkpoint)[0]
