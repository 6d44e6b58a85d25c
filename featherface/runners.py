"""Runners: a callable from a float32 NCHW batch (BGR minus the mean) to the network's raw
``(loc (N, A, 4), conf (N, A, 2), landmark_deltas (N, A, 10))`` tensors, or, for ONNX graphs exported with
decoding inside (``decoded = True``), to ``(boxes, scores, landmarks)`` in input pixels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

# A runner maps a float32 NCHW batch to (loc, conf, landmark_deltas) tensors and says whether the
# outputs are already decoded (ONNX graphs exported with decoding inside).
Runner = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class TorchRunner:
    """Runs a PyTorch model under ``torch.inference_mode``. With ``fuse=True`` (default) it runs
    a copy with BatchNorm folded into the convolutions and Nano's channel shuffles folded into
    its heads (same outputs to ~1e-5, faster); the model passed in is left untouched.
    ``num_threads`` (CPU) is applied for each call and the process-wide setting restored
    afterwards, so two detectors can use different counts.

    ``channels_last`` runs the network in NHWC memory layout (same values to ~1e-5). ``None``
    (default) uses it on CPU for models whose ``prefers_channels_last`` is true, i.e. where it
    was measured faster (all three of ours)."""

    decoded = False

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", fuse: bool = True,
                 num_threads: int | None = None, channels_last: bool | None = None) -> None:
        from .models.fuse import fold_batchnorm, fold_channel_shuffle

        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        self.device = torch.device(device)
        self.num_threads = num_threads
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

    def __call__(self, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        saved = torch.get_num_threads()
        if self.num_threads and self.num_threads != saved:
            torch.set_num_threads(self.num_threads)
        try:
            with torch.inference_mode():
                x = torch.from_numpy(batch).to(self.device)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                return self.model(x)
        finally:
            if self.num_threads and self.num_threads != saved:
                torch.set_num_threads(saved)


def _read_graph_metadata(runner, meta: dict[str, str]) -> None:
    """Set ``arch``, ``decoded``, ``score_threshold`` and the input ``contract`` of a runner from
    the metadata :func:`featherface.export.export_onnx` writes (older files: BGR minus mean)."""
    runner.arch = meta.get("featherface_arch", "?")
    runner.decoded = meta.get("decoded", "false") == "true"
    runner.score_threshold = float(meta["score_threshold"]) if "score_threshold" in meta else None
    mean = meta.get("mean")
    runner.contract = {"color": meta.get("color", "bgr"),
                       "mean": tuple(float(v) for v in mean.split(",")) if mean else (104.0, 117.0, 123.0)}


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
        _read_graph_metadata(self, self.session.get_modelmeta().custom_metadata_map)
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(path)

    def __call__(self, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return tuple(torch.from_numpy(o) for o in outs)  # type: ignore[return-value]


class OpenVinoRunner:
    """Runs an exported ONNX graph with OpenVINO on the CPU. OpenVINO is fastest with a STATIC
    input shape, so the graph is compiled once per input shape (batch, 3, H, W) and the compiled
    models are kept in a small LRU cache (``cache_size`` shapes); the first call at a new size
    pays the compilation."""

    def __init__(self, path: str | Path, num_threads: int | None = None, cache_size: int = 8) -> None:
        import onnx
        import openvino as ov

        from collections import OrderedDict

        self.path = Path(path)
        proto = onnx.load(str(path), load_external_data=False)
        _read_graph_metadata(self, {p.key: p.value for p in proto.metadata_props})
        self.core = ov.Core()
        self.model = self.core.read_model(str(path))
        # f32: some CPUs would otherwise run bf16 by default and change scores in the 3rd decimal
        self.config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_PRECISION_HINT": "f32"}
        if num_threads:
            self.config["INFERENCE_NUM_THREADS"] = int(num_threads)
        self.cache_size = cache_size
        self._compiled: OrderedDict = OrderedDict()

    def _compiled_for(self, shape: tuple[int, ...]):
        compiled = self._compiled.get(shape)
        if compiled is None:
            model = self.model.clone()
            model.reshape({0: list(shape)})
            compiled = self.core.compile_model(model, "CPU", self.config)
            self._compiled[shape] = compiled
            if len(self._compiled) > self.cache_size:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(shape)
        return compiled

    def __call__(self, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        compiled = self._compiled_for(tuple(batch.shape))
        result = compiled(batch)
        return tuple(torch.from_numpy(np.asarray(result[o])) for o in compiled.outputs)  # type: ignore[return-value]
