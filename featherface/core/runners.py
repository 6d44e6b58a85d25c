"""Engines for exported graphs: onnxruntime and OpenVINO.

The runner contract (every runner, the torch one in :mod:`featherface.export.torch_runner` included): a
callable from a float32 ``(N, 3, H, W)`` batch (the model's colour order minus its mean) to
:class:`~featherface.core.postprocess.RawOutputs` (or :class:`DecodedOutputs` for graphs exported
with decoding inside), numpy arrays; plus the attributes ``arch``, ``score_threshold`` (the weights'
recommended threshold or ``None``) and ``contract`` (``{"color", "mean"}``).
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np

from .constants import MEAN_BGR
from .postprocess import DecodedOutputs, RawOutputs


class Runner(Protocol):
    arch: str
    score_threshold: float | None
    contract: dict

    def __call__(self, batch: np.ndarray) -> RawOutputs | DecodedOutputs: ...


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str | None):
    """Import ``module`` or raise :class:`MissingExtra` naming ``pip install 'featherface[extra]'``
    (``extra=None``: a package of the base install, named itself)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        fix = f"pip install 'featherface[{extra}]'" if extra else f"pip install {module.split('.')[0]}"
        raise MissingExtra(f"needs the optional package {module.split('.')[0]!r}: {fix}") from exc


def read_graph_metadata(meta: dict[str, str]) -> dict:
    """``arch``, ``decoded``, ``score_threshold`` and the input ``contract`` from the metadata
    :func:`featherface.export.graph.export_onnx` writes (graphs without it: BGR minus the mean)."""
    mean = meta.get("mean")
    return {"arch": meta.get("featherface_arch", "?"),
            "decoded": meta.get("decoded", "false") == "true",
            "score_threshold": float(meta["score_threshold"]) if "score_threshold" in meta else None,
            "contract": {"color": meta.get("color", "bgr"),
                         "mean": tuple(float(v) for v in mean.split(",")) if mean else MEAN_BGR}}


def _wrap(outs: list[np.ndarray], decoded: bool) -> RawOutputs | DecodedOutputs:
    return DecodedOutputs(*outs[:3]) if decoded else RawOutputs(*outs[:3])


def graph_output_names(path: str | Path) -> list[str]:
    """The output names of an ONNX graph (to tell our graphs from other detectors')."""
    ort = require("onnxruntime", None)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # some graphs list their weights as inputs: no warnings for a look at the outputs
    return [o.name for o in ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).get_outputs()]


class OnnxRunner:
    """Runs a graph (a path, or the bytes of an ``.onnx`` file) with onnxruntime."""

    #: onnxruntime sessions take concurrent ``run`` calls: batch runs may call it from several threads
    thread_safe = True

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None, device: str = "cpu") -> None:
        ort = require("onnxruntime", None)
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = num_threads
            opts.inter_op_num_threads = 1
        # Between two runs the detector post-processes on the same cores; onnxruntime's worker
        # threads busy-wait after a run by default and steal that time (measured on 2 cores,
        # Nano 640x480, 2 threads: 36 ms per image with spinning, 26 ms without).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # warnings about unused initialisers are not the user's business
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError(f"device {device!r}: this onnxruntime has no CUDA provider (use 'cpu', or "
                                 "install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            name = "the graph" if isinstance(model, bytes) else str(model)
            raise ValueError(f"{name}: not a loadable ONNX graph ({str(exc).splitlines()[0][:200]})") from exc
        meta = read_graph_metadata(self.session.get_modelmeta().custom_metadata_map)
        self.arch, self.decoded = meta["arch"], meta["decoded"]
        self.score_threshold, self.contract = meta["score_threshold"], meta["contract"]
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 3 or len(inputs[0].shape) != 4:
            raise ValueError(f"{model if not isinstance(model, bytes) else 'the graph'}: not a face-detector graph "
                             f"(expected one NCHW input and loc/conf/landmark outputs)")
        self.input_name = inputs[0].name
        self.source = None if isinstance(model, bytes) else Path(model)

    def __call__(self, batch: np.ndarray) -> RawOutputs | DecodedOutputs:
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return _wrap(outs, self.decoded)


class OpenVinoRunner:
    """Runs an ONNX graph with OpenVINO on the CPU. OpenVINO is fastest with a STATIC input shape,
    so the graph is compiled once per input shape (batch, 3, H, W) and the compiled models are kept
    in a small LRU cache (``cache_size`` shapes); the first call at a new size pays the compilation."""

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None, cache_size: int = 8) -> None:
        ov = require("openvino", "openvino")
        onnx = require("onnx", "openvino")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        try:
            proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model),
                                                                                            load_external_data=False)
        except Exception as exc:
            raise ValueError(f"{model if not isinstance(model, bytes) else 'the graph'}: not an ONNX graph") from exc
        meta = read_graph_metadata({p.key: p.value for p in proto.metadata_props})
        self.arch, self.decoded = meta["arch"], meta["decoded"]
        self.score_threshold, self.contract = meta["score_threshold"], meta["contract"]
        self.core = ov.Core()
        # read from bytes, so the file may be gone after construction (a temporary export)
        self.model = self.core.read_model(model if isinstance(model, bytes) else Path(model).read_bytes())
        # f32: some CPUs would otherwise run bf16 by default and change scores in the 3rd decimal
        self.config: dict[str, str | int] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_PRECISION_HINT": "f32"}
        if num_threads:
            self.config["INFERENCE_NUM_THREADS"] = int(num_threads)
        self.cache_size = cache_size
        self.source = None if isinstance(model, bytes) else Path(model)
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

    def all_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output of the graph, in its order (a distillation teacher's graph also returns features)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        compiled = self._compiled_for(tuple(batch.shape))
        result = compiled(batch)
        return [np.asarray(result[o]) for o in compiled.outputs]

    def __call__(self, batch: np.ndarray) -> RawOutputs | DecodedOutputs:
        return _wrap(self.all_outputs(batch), self.decoded)
