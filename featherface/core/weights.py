"""The weights inside the package and how names map to files.

| name | file | engine |
|---|---|---|
| ``"nano"`` | ``weights/nano.onnx`` (fp32, dynamic batch/height/width) | onnxruntime or OpenVINO |
| ``"nano-int8"`` | ``weights/nano_int8.onnx`` (static per-channel INT8, QDQ) | onnxruntime or OpenVINO |
| ``"nano"`` with ``backend="torch"`` | ``weights/nano.pt`` (the checkpoint both graphs come from) | PyTorch (``[torch]`` extra) |
| ``"v1"`` | ``$FEATHERFACE_WEIGHTS/v1.pt``; the official V1 is not redistributed | PyTorch, or exported |

``$FEATHERFACE_WEIGHTS`` (a folder) is searched before the package for ``<name>.pt`` /
``<name>.onnx``.
"""
from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
#: the photo ``featherface detect --example`` runs on (public domain; see examples/README.md)
EXAMPLE_IMAGE = EXAMPLES_DIR / "astronaut.jpg"

#: bundled name -> file stem
BUNDLED = {"nano": "nano", "nano-int8": "nano_int8", "v1": "v1"}


def resolve_weights(name_or_path: str | Path, torch_backend: bool = False) -> Path:
    """Map a bundled name to its file (the ``.onnx`` graph, or the ``.pt`` checkpoint when
    ``torch_backend``); any other value is a path that must exist."""
    name = str(name_or_path)
    if name in BUNDLED:
        stem = BUNDLED[name]
        suffixes = (".pt",) if torch_backend or name == "v1" else (".onnx",)
        if name == "nano-int8" and torch_backend:
            raise ValueError("'nano-int8' is an INT8 ONNX graph: run it with backend onnxruntime or openvino")
        folders = [Path(os.environ["FEATHERFACE_WEIGHTS"])] if os.environ.get("FEATHERFACE_WEIGHTS") else []
        folders.append(WEIGHTS_DIR)
        candidates = [f / f"{stem}{s}" for f in folders for s in suffixes]
        for c in candidates:
            if c.is_file():
                return c
        hint = (" The official V1 weights are not redistributed here: convert them with "
                "`featherface convert featherface_v1_official.pth v1.pt` and pass the path.") if name == "v1" else ""
        raise FileNotFoundError(f"no weights for {name!r} (looked for {', '.join(map(str, candidates))}).{hint}")
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path
