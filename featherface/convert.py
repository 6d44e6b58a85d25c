"""Convert the official FeatherFace V1 checkpoint to this project's checkpoint format.

The official file is a plain ``state_dict`` whose keys already match :class:`FeatherFaceV1`
(our module names mirror the reference code), plus ``total_ops``/``total_params`` entries that a
FLOP profiler (thop) attached to every module. Those are dropped; everything else must match
exactly (strict load), and a ``module.`` prefix from ``DataParallel`` is tolerated.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from .checkpoint import CheckpointError, save_checkpoint
from .models import FeatherFaceV1

log = logging.getLogger(__name__)

PROFILER_SUFFIXES = ("total_ops", "total_params")


def clean_official_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Drop profiler entries and ``module.`` prefixes. Returns ``(state, dropped_keys)``."""
    cleaned, dropped = {}, []
    for key, value in state.items():
        if key.split(".")[-1] in PROFILER_SUFFIXES:
            dropped.append(key)
            continue
        cleaned[key.removeprefix("module.")] = value
    return cleaned, dropped


def load_official_v1(src: str | Path) -> FeatherFaceV1:
    """Build :class:`FeatherFaceV1` from the official checkpoint, strictly."""
    src = Path(src)
    try:
        raw = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{src}: cannot be read as a torch state_dict ({exc})") from exc
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise CheckpointError(f"{src}: expected a state_dict, got {type(raw).__name__}")
    state, dropped = clean_official_state_dict(raw)
    model = FeatherFaceV1()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{src}: does not match the FeatherFace V1 architecture: {exc}") from exc
    log.info("loaded %d tensors from %s, dropped %d profiler entries", len(state), src, len(dropped))
    return model.eval()


def convert_official_v1(src: str | Path, dst: str | Path) -> dict:
    """Convert ``src`` (official V1 state_dict) to a FeatherFace checkpoint at ``dst``."""
    model = load_official_v1(src)
    digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
    meta = {"source": str(Path(src).name), "source_sha256": digest,
            "note": "official FeatherFace V1 weights (Kim, Jung, Kim, Electronics 2025), converted"}
    save_checkpoint(model, "v1", dst, meta=meta)
    return meta
