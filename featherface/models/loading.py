"""Finding and loading weights: bundled names, our checkpoints, and released state_dicts.

``checkpoint_path("nano")`` finds the bundled checkpoint; ``load_any(path)`` returns ``(model,
checkpoint dict)`` for our format or, converted in memory and loaded strictly, for a released
V1 / RetinaFace-MobileNet0.25 state_dict. ``preprocess_contract(ckpt)`` is the input contract the
weights were trained with (colour order, mean, landmark order), read from the checkpoint.
"""
from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from .checkpoint import CheckpointError, load_model, read_checkpoint
from ..core.constants import LANDMARK_NAMES, MEAN_BGR
from ..core.weights import resolve_weights

log = logging.getLogger(__name__)


def checkpoint_path(name_or_path: str | Path) -> Path:
    """The checkpoint file for a bundled name (``"nano"`` -> ``weights/nano.pt``; ``"v1"``) or a path."""
    return resolve_weights(name_or_path, torch_backend=True)


def load_any(path: Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Load our checkpoint format or, failing that, a released V1 or RetinaFace-MobileNet0.25
    state_dict (converted in memory, strictly)."""
    try:
        read_checkpoint(path)
    except CheckpointError as exc:
        if "not a FeatherFace checkpoint" not in str(exc):
            raise
        from .convert import load_official

        log.info("%s is not in FeatherFace format; trying it as a released V1/RetinaFace state_dict", path)
        model, arch = load_official(path)
        return model.to(device), {"arch": arch, "meta": {"source": str(path)}}
    return load_model(path, device)


def recommended_threshold(ckpt: dict) -> float | None:
    """The score threshold a checkpoint recommends (``meta["score_threshold"]``), if any. Models
    distilled at a high temperature are less confident than their teacher, so their useful
    operating point sits lower than 0.5; the model card says how it was chosen."""
    value = ckpt.get("meta", {}).get("score_threshold")
    return None if value is None else float(value)


def preprocess_contract(ckpt: dict) -> dict:
    """``{"color", "mean", "landmarks"}`` the weights expect, from the checkpoint (released
    state_dicts, which state nothing, follow the reference implementation: BGR minus
    (104, 117, 123)). Weights with a std division or another landmark order are refused rather
    than silently mis-fed."""
    pre = ckpt.get("preprocess") or {}
    color = str(pre.get("color", "bgr")).lower()
    mean = tuple(float(v) for v in pre.get("mean", MEAN_BGR))
    landmarks = tuple(ckpt.get("landmarks", LANDMARK_NAMES))
    if color not in ("bgr", "rgb") or len(mean) != 3 or pre.get("std") not in (None, [1, 1, 1], (1, 1, 1)):
        raise CheckpointError(f"unsupported input contract in checkpoint: {pre}")
    if landmarks != LANDMARK_NAMES:
        raise CheckpointError(f"checkpoint landmark order {list(landmarks)} is not {list(LANDMARK_NAMES)}")
    return {"color": color, "mean": mean, "landmarks": landmarks}
