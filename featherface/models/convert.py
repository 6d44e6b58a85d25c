"""Convert released checkpoints (official FeatherFace V1, RetinaFace-MobileNet0.25) to this
project's checkpoint format.

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

from .checkpoint import CheckpointError, load_state_strict, save_checkpoint
from torch import nn

from . import FeatherFaceV1, build_model

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


# Released state_dicts we convert, recognised by a key only that architecture has.
OFFICIAL_SOURCES = {
    "v1": ("bifpn.0.", "official FeatherFace V1 weights (Kim, Jung, Kim, Electronics 2025), converted"),
    "retinaface": ("fpn.output1.", "RetinaFace-MobileNet0.25 (biubug6/Pytorch_Retinaface mobilenet0.25_Final.pth), converted"),
}


def _read_state_dict(src: Path) -> dict[str, torch.Tensor]:
    try:
        raw = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{src}: cannot be read as a torch state_dict ({exc})") from exc
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise CheckpointError(f"{src}: expected a state_dict, got {type(raw).__name__}")
    return raw


def detect_official_arch(state: dict[str, torch.Tensor]) -> str | None:
    """``"v1"`` or ``"retinaface"`` from the keys of a cleaned state_dict, else ``None``."""
    for arch, (marker, _) in OFFICIAL_SOURCES.items():
        if any(k.startswith(marker) for k in state):
            return arch
    return None


def load_official(src: str | Path, arch: str | None = None) -> tuple[nn.Module, str]:
    """Build the model of a released state_dict (official V1 or RetinaFace-MobileNet0.25),
    strictly. ``arch`` is detected from the keys when not given. Returns ``(model, arch)``."""
    src = Path(src)
    state, dropped = clean_official_state_dict(_read_state_dict(src))
    arch = arch or detect_official_arch(state)
    if arch is None:
        raise CheckpointError(f"{src}: not a FeatherFace checkpoint, nor an official V1 or RetinaFace-MobileNet0.25 state_dict")
    model = build_model(arch)
    load_state_strict(model, state, f"{src}: does not match the {arch} architecture")
    log.info("loaded %d tensors from %s as %s, dropped %d profiler entries", len(state), src, arch, len(dropped))
    return model.eval(), arch


def load_official_v1(src: str | Path) -> FeatherFaceV1:
    """Build :class:`FeatherFaceV1` from the official checkpoint, strictly."""
    return load_official(src, "v1")[0]


def convert_official(src: str | Path, dst: str | Path, arch: str | None = None) -> dict:
    """Convert a released state_dict at ``src`` to a FeatherFace checkpoint at ``dst``.
    Returns the metadata written (``arch``, source name and sha256)."""
    model, arch = load_official(src, arch)
    digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
    meta = {"source": str(Path(src).name), "source_sha256": digest, "note": OFFICIAL_SOURCES[arch][1]}
    save_checkpoint(model, arch, dst, meta=meta)
    return {**meta, "arch": arch}


def convert_official_v1(src: str | Path, dst: str | Path) -> dict:
    """Convert the official V1 state_dict ``src`` to a FeatherFace checkpoint at ``dst``."""
    return convert_official(src, dst, "v1")
