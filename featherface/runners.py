"""Runners: a callable from a float32 NCHW batch (BGR minus the mean) to the network's raw
``(loc (N, A, 4), conf (N, A, 2), landms (N, A, 10))`` tensors, or, for ONNX graphs exported with
decoding inside (``decoded = True``), to ``(boxes, scores, landmarks)`` in input pixels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

# A runner maps a float32 NCHW batch to (loc, conf, landms) tensors and says whether the
# outputs are already decoded (ONNX graphs exported with decoding inside).
Runner = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class TorchRunner:
    """Runs a PyTorch model under ``torch.inference_mode``. With ``fuse=True`` (default) it runs
    a copy with BatchNorm folded into the convolutions (same outputs to ~1e-5, faster); the
    model passed in is left untouched. ``num_threads`` (CPU) is applied for each call and the
    process-wide setting restored afterwards, so two detectors can use different counts."""

    decoded = False

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", fuse: bool = True,
                 num_threads: int | None = None) -> None:
        from .models.fuse import fold_batchnorm

        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        self.device = torch.device(device)
        self.num_threads = num_threads
        model = model.to(self.device).eval()
        self.model = fold_batchnorm(model) if fuse else model

    def __call__(self, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        saved = torch.get_num_threads()
        if self.num_threads and self.num_threads != saved:
            torch.set_num_threads(self.num_threads)
        try:
            with torch.inference_mode():
                return self.model(torch.from_numpy(batch).to(self.device))
        finally:
            if self.num_threads and self.num_threads != saved:
                torch.set_num_threads(saved)


class OnnxRunner:
    """Runs an exported graph with onnxruntime and returns torch tensors, like ``TorchRunner``."""

    def __init__(self, path: str | Path, num_threads: int | None = None, device: str = "cpu") -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = num_threads
            opts.inter_op_num_threads = 1
        # Between two runs the detector post-processes on the same cores; onnxruntime's worker
        # threads busy-wait after a run by default and steal that time (measured on 2 cores,
        # Nano 640x480, 2 threads: 36 ms per image with spinning, 26 ms without).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), opts, providers=providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.arch = meta.get("featherface_arch", "?")
        self.decoded = meta.get("decoded", "false") == "true"
        self.score_threshold = float(meta["score_threshold"]) if "score_threshold" in meta else None
        # the graph's input contract, as export_onnx wrote it (older files: the reference's BGR minus mean)
        mean = meta.get("mean")
        self.contract = {"color": meta.get("color", "bgr"),
                         "mean": tuple(float(v) for v in mean.split(",")) if mean else (104.0, 117.0, 123.0)}
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(path)

    def __call__(self, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return tuple(torch.from_numpy(o) for o in outs)  # type: ignore[return-value]
