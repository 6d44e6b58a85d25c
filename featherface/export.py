"""ONNX export, the onnxruntime runner, and the PyTorch/ONNX parity check.

Graph contract (``featherface export``):

* input ``input``: ``(batch, 3, height, width)`` float32, BGR minus mean (104, 117, 123);
  batch, height and width are dynamic;
* raw outputs (default): ``loc (batch, anchors, 4)``, ``conf (batch, anchors, 2)`` class logits,
  ``landms (batch, anchors, 10)``, the model's own outputs;
* with ``decode=True``: ``boxes (batch, anchors, 4)`` x1,y1,x2,y2 and
  ``landmarks (batch, anchors, 10)`` in INPUT pixels, ``scores (batch, anchors)`` face
  probabilities; the anchors are computed inside the graph from the input size;
* metadata properties: ``featherface_arch``, ``decoded``, ``color`` (bgr), ``mean`` (b,g,r),
  ``std`` (none), ``landmarks`` (order), ``variances``, ``export_size``.

The exporter is PyTorch's TorchScript-based one (``dynamo=False``): in torch 2.13 it keeps the
"SAME"-padding arithmetic and the deformable-convolution sampling grid symbolic in H and W, which
the parity check verifies at sizes other than the export size. (The torch.export-based exporter
produced a graph that fails at batch 2 for V1.)
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import LANDMARK_NAMES, MEAN_BGR, MIN_SIZES, STEPS, VARIANCES

log = logging.getLogger(__name__)

RAW_OUTPUTS = ("loc", "conf", "landms")
DECODED_OUTPUTS = ("boxes", "scores", "landmarks")


def _graph_priors(h: torch.Tensor | int, w: torch.Tensor | int, dtype: torch.dtype) -> torch.Tensor:
    """Priors ``(A, 4)`` in INPUT pixels (cx, cy, w, h), built with traceable ops so that the
    exported graph recomputes them for any input size. Same order as :func:`anchors.priors`."""
    levels = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = (h + step - 1) // step, (w + step - 1) // step
        cy = (torch.arange(fh, dtype=dtype) + 0.5) * step
        cx = (torch.arange(fw, dtype=dtype) + 0.5) * step
        cyy, cxx = torch.meshgrid(cy, cx, indexing="ij")
        k = len(sizes)
        s = torch.tensor(sizes, dtype=dtype)
        ctr = torch.stack([cxx, cyy], dim=-1)[:, :, None, :].expand(-1, -1, k, 2)
        wh = torch.stack([s, s], dim=-1)[None, None].expand(ctr.shape[0], ctr.shape[1], k, 2)
        levels.append(torch.cat([ctr, wh], dim=-1).reshape(-1, 4))
    return torch.cat(levels)


class DecodedModel(nn.Module):
    """Wraps a model so that its outputs are decoded boxes/scores/landmarks in input pixels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        loc, conf, landms = self.model(x)
        p = _graph_priors(x.shape[2], x.shape[3], x.dtype)[None]
        c, wh = p[..., :2], p[..., 2:]
        ctr = c + loc[..., :2] * VARIANCES[0] * wh
        size = wh * torch.exp(loc[..., 2:] * VARIANCES[1])
        boxes = torch.cat([ctr - size / 2, ctr + size / 2], dim=-1)
        lms = (c.repeat(1, 1, 5) + landms * VARIANCES[0] * wh.repeat(1, 1, 5))
        return boxes, torch.softmax(conf, dim=-1)[..., 1], lms


def export_onnx(model: nn.Module, path: str | Path, arch: str, height: int = 640, width: int = 640,
                decode: bool = False, opset: int = 17, score_threshold: float | None = None) -> Path:
    """Export ``model`` to ONNX at ``path`` (see the module docstring for the contract).
    ``score_threshold``: the checkpoint's recommended default, recorded in the metadata."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    net = DecodedModel(model) if decode else model
    names = DECODED_OUTPUTS if decode else RAW_OUTPUTS
    dyn = {"input": {0: "batch", 2: "height", 3: "width"}}
    for n in names:
        dyn[n] = {0: "batch", 1: "anchors"}
    tmp = path.with_name(f".{path.name}.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (torch.zeros(1, 3, height, width),), str(tmp), input_names=["input"],
                          output_names=list(names), dynamic_axes=dyn, opset_version=opset, dynamo=False)
    proto = onnx.load(str(tmp))
    meta = {"featherface_arch": arch, "decoded": str(decode).lower(), "color": "bgr",
            "mean": ",".join(str(m) for m in MEAN_BGR), "std": "none", "landmarks": ",".join(LANDMARK_NAMES),
            "variances": ",".join(str(v) for v in VARIANCES), "export_size": f"{height}x{width}",
            "outputs": ("boxes/landmarks: input pixels x1,y1,x2,y2; scores: face probability" if decode
                        else "loc/landms: raw regressions (see anchors.py); conf: class logits, index 1 = face")}
    if score_threshold is not None:
        meta["score_threshold"] = f"{score_threshold:g}"
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path


def export_to_temp(checkpoint: str | Path) -> Path:
    """Export a checkpoint to a temporary ONNX file (for ``FaceDetector(backend="onnxruntime")``)."""
    from .detector import load_any, recommended_threshold

    model, ckpt = load_any(Path(checkpoint))
    out = Path(tempfile.mkdtemp(prefix="featherface_onnx_")) / f"{Path(checkpoint).stem}.onnx"
    return export_onnx(model, out, arch=ckpt.get("arch", "?"), score_threshold=recommended_threshold(ckpt))


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
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(path)

    def __call__(self, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return tuple(torch.from_numpy(o) for o in outs)  # type: ignore[return-value]


def check_parity(model: nn.Module, onnx_path: str | Path, sizes=((480, 640), (312, 500)), batch: int = 2,
                 seed: int = 0) -> dict[str, float]:
    """Max abs differences between PyTorch and onnxruntime on random inputs of the given sizes
    (pixel-like values: uniform in [-128, 128]), for every output of the graph."""
    runner = OnnxRunner(onnx_path)
    net = DecodedModel(model) if runner.decoded else model
    net = net.eval().cpu()
    g = torch.Generator().manual_seed(seed)
    worst: dict[str, float] = {}
    names = DECODED_OUTPUTS if runner.decoded else RAW_OUTPUTS
    for h, w in sizes:
        x = torch.rand(batch, 3, h, w, generator=g) * 256 - 128
        with torch.no_grad():
            ref = net(x)
        got = runner(x.numpy())
        for n, r, o in zip(names, ref, got):
            if tuple(r.shape) != tuple(o.shape):
                raise AssertionError(f"{n}: shape {tuple(o.shape)} from ONNX != {tuple(r.shape)} from PyTorch at {h}x{w}")
            worst[n] = max(worst.get(n, 0.0), float((r - o).abs().max()))
    return worst


def cmd_export(args: argparse.Namespace) -> int:
    from .detector import load_any, recommended_threshold, resolve_weights

    model, ckpt = load_any(resolve_weights(args.model))
    arch = ckpt.get("arch", "?")
    h, w = args.size
    path = export_onnx(model, args.output, arch, h, w, decode=args.decode, opset=args.opset,
                       score_threshold=recommended_threshold(ckpt))
    print(f"wrote {path} ({arch}, exported at {h}x{w}, outputs: {', '.join(DECODED_OUTPUTS if args.decode else RAW_OUTPUTS)})")
    if not args.no_check:
        sizes = ((h + 32 * 3 + 8, w - 64 - 4 if w > 128 else w + 36), (max(32, h // 2 + 1), max(32, w // 2 - 3)))
        diffs = check_parity(model, path, sizes=sizes, batch=2)
        tol = args.tolerance
        print("parity vs PyTorch (batch 2, sizes " + ", ".join(f"{a}x{b}" for a, b in sizes) + "): "
              + ", ".join(f"{k} max|diff| {v:.2e}" for k, v in diffs.items()))
        if max(diffs.values()) > tol:
            print(f"parity FAILED: tolerance {tol}")
            return 1
        print(f"parity OK (tolerance {tol})")
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("export", help="export to ONNX (dynamic batch/height/width) and check parity with PyTorch")
    p.add_argument("--model", default="nano", help="'nano', 'v1', a checkpoint, an official V1 or RetinaFace .pth")
    p.add_argument("--output", "-o", type=Path, required=True, help="output .onnx path")
    p.add_argument("--size", type=int, nargs=2, default=(640, 640), metavar=("H", "W"), help="export size")
    p.add_argument("--decode", action="store_true", help="decode boxes/landmarks and softmax scores inside the graph")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the parity check")
    p.add_argument("--tolerance", type=float, default=1e-3, help="max abs difference allowed by the parity check")
    p.set_defaults(func=cmd_export)
