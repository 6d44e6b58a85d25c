"""The PyTorch runner: the torch side of the runner contract (:mod:`featherface.core.runners`).

:class:`TorchRunner` runs a model and converts at its own boundary: numpy batch in,
:class:`~featherface.core.postprocess.RawOutputs` (numpy) out, so the detector's post-processing
is the same numpy code for every engine. :func:`runner_from_checkpoint` is what
``FaceDetector.from_pretrained`` calls for a ``.pt``/``.pth`` file.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.constants import MEAN_BGR
from ..core.postprocess import RawOutputs
from ..core.runners import OnnxRunner, OpenVinoRunner, Runner

log = logging.getLogger(__name__)


class TorchRunner:
    """Runs a PyTorch model under ``torch.inference_mode``. With ``fuse=True`` (default) it runs
    a copy with BatchNorm folded into the convolutions and Nano's channel shuffles folded into
    its heads (same outputs to ~1e-5, faster); the model passed in is left untouched.
    ``num_threads`` (CPU) is applied for each call and the process-wide setting restored
    afterwards, so two detectors can use different counts.

    ``channels_last`` runs the network in NHWC memory layout (same values to ~1e-5). ``None``
    (default) uses it on CPU for models whose ``prefers_channels_last`` is true, i.e. where it
    was measured faster (all three of ours)."""

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", fuse: bool = True,
                 num_threads: int | None = None, channels_last: bool | None = None, arch: str = "?",
                 score_threshold: float | None = None, contract: dict | None = None) -> None:
        from ..models.fuse import fold_batchnorm, fold_channel_shuffle

        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        self.device = torch.device(device)
        self.num_threads = num_threads
        self.arch, self.score_threshold = arch, score_threshold
        self.contract = contract or {"color": "bgr", "mean": MEAN_BGR}
        model = model.to(self.device).eval()
        self.model = fold_channel_shuffle(fold_batchnorm(model)) if fuse else model
        if channels_last is None:
            channels_last = self.device.type == "cpu" and getattr(model, "prefers_channels_last", False)
        self.channels_last = channels_last
        if channels_last:
            if self.model is model:  # never change the caller's model
                import copy

                self.model = copy.deepcopy(model)
            self.model.to(memory_format=torch.channels_last)

    def forward(self, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model's raw output tensors (on the runner's device) for a numpy batch."""
        saved = torch.get_num_threads()
        if self.num_threads and self.num_threads != saved:
            torch.set_num_threads(self.num_threads)
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                return self.model(x)
        finally:
            if self.num_threads and self.num_threads != saved:
                torch.set_num_threads(saved)

    def __call__(self, batch: np.ndarray) -> RawOutputs:
        return RawOutputs(*(t.float().cpu().numpy() for t in self.forward(batch)))


def runner_from_checkpoint(path: str | Path, backend: str = "torch", device: str = "cpu",
                           num_threads: int | None = None) -> Runner:
    """A runner for a checkpoint or released state_dict: PyTorch, or (``backend`` onnxruntime /
    openvino) the graph exported in memory; the temporary file is removed before returning."""
    from ..models.loading import load_any, preprocess_contract, recommended_threshold

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: this PyTorch build sees no CUDA device (use 'cpu')")
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r} (e.g. 'cpu', 'cuda', 'cuda:1')") from exc
    model, ckpt = load_any(Path(path), device)
    arch, threshold, contract = ckpt.get("arch", "?"), recommended_threshold(ckpt), preprocess_contract(ckpt)
    runner: Runner
    if backend == "torch":
        runner = TorchRunner(model, device, num_threads=num_threads, arch=arch, score_threshold=threshold,
                             contract=contract)
        runner.source = Path(path)
        return runner
    from .graph import export_onnx

    with tempfile.TemporaryDirectory(prefix="featherface_") as tmp:
        graph = export_onnx(model.cpu(), Path(tmp) / "model.onnx", arch=arch, score_threshold=threshold).read_bytes()
    log.info("%s exported in memory for %s", path, backend)
    runner = (OpenVinoRunner(graph, num_threads=num_threads) if backend == "openvino"
              else OnnxRunner(graph, num_threads=num_threads, device=device))
    runner.source = Path(path)  # what the results came from (its sha256 goes into run records)
    return runner
