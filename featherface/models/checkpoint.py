"""This project's checkpoint format: safe to load, self-describing, written atomically.

A checkpoint is a ``dict`` of tensors and plain Python values only, so it loads with
``torch.load(path, weights_only=True)`` (no pickled code) and on CPU whatever device saved it::

    {
      "format": "featherface",          # marker checked on load
      "format_version": 1,
      "arch": "v1" | "nano",            # rebuilds the model with build_model(arch)
      "state_dict": {name: tensor},     # strict: must match the architecture exactly
      "preprocess": {"color": "bgr", "mean": [104, 117, 123], "std": None},
      "landmarks": ["left_eye", ...],   # order of the 5 landmark points
      "meta": {...},                    # provenance: source file, training command, metrics ...
      # training checkpoints may add "optimizer", "scheduler", "epoch", "rng", "config" ...
    }
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.constants import LANDMARK_NAMES, MEAN_BGR
from ..core.files import atomic_write
from . import build_model

FORMAT = "featherface"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A file is not a usable FeatherFace checkpoint (message names the file and the reason)."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`featherface.core.files.atomic_write`: a crash never leaves a
    truncated checkpoint behind."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


#: (old, new) key fragments: Nano's landmark head conv was ``ldm`` until 2026-11-25 (the bundled
#: nano.pt of that day and its training runs use the old name).
RENAMED_KEYS = ((".ldm.", ".landmark."),)


def upgrade_keys(state: dict) -> dict:
    """``state`` with old key fragments (:data:`RENAMED_KEYS`) replaced by today's names."""
    out = {}
    for k, v in state.items():
        for old, new in RENAMED_KEYS:
            k = k.replace(old, new)
        out[k] = v
    return out


def load_state_strict(model: nn.Module, state: dict, what: str) -> None:
    """``load_state_dict(strict=True)`` with a SHORT error: counts and the first few missing,
    unexpected and mis-shaped keys (PyTorch's own message lists every key, tens of kB). Keys
    renamed since a checkpoint was written are read under their new names (:data:`RENAMED_KEYS`)."""
    state = upgrade_keys(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{len(v)} {name} (e.g. {', '.join(v[:3])})" for name, v in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if v]
        raise CheckpointError(f"{what}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def make_checkpoint(model: nn.Module, arch: str, meta: dict | None = None, **extra: Any) -> dict:
    """Package a model's weights with the contract that travels with them."""
    # contiguous: a model trained in channels_last stores its tensors in the usual layout
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "state_dict": state,
        "preprocess": {"color": "bgr", "mean": list(MEAN_BGR), "std": None},
        "landmarks": list(LANDMARK_NAMES),
        "meta": dict(meta or {}),
        **extra,
    }


def save_checkpoint(model: nn.Module, arch: str, path: str | Path, meta: dict | None = None, **extra: Any) -> None:
    atomic_save(make_checkpoint(model, arch, meta, **extra), path)


def read_checkpoint(path: str | Path) -> dict:
    """Read and validate a checkpoint dict (on CPU, ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickled code, foreign format...
        raise CheckpointError(f"{path}: cannot be read as a safe torch checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        hint = " (an official V1 state_dict? convert it with `featherface convert SRC DST`)" if isinstance(ckpt, dict) else ""
        raise CheckpointError(f"{path}: not a FeatherFace checkpoint{hint}")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {ckpt['format_version']} is newer than this library's {FORMAT_VERSION}")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model stored in ``path`` (strict load), in eval mode on ``device``.
    Returns ``(model, checkpoint_dict)``."""
    ckpt = read_checkpoint(path)
    try:
        model = build_model(ckpt["arch"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    load_state_strict(model, ckpt["state_dict"], f"{path}: weights do not match architecture {ckpt['arch']!r}")
    return model.to(device).eval(), ckpt
