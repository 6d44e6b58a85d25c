"""ONNX export and the PyTorch/ONNX parity check.

Graph contract (``featherface export``):

* input ``input``: ``(batch, 3, height, width)`` float32, BGR minus mean (104, 117, 123);
  batch, height and width are dynamic;
* raw outputs (default): ``loc (batch, anchors, 4)``, ``conf (batch, anchors, 2)`` class logits,
  ``landms (batch, anchors, 10)`` landmark regressions (``landmark_deltas`` in the code), the
  model's own outputs;
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

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from ..core.runners import OnnxRunner
from ..models.anchors import decode, decode_landmarks, pixel_priors
from ..core.constants import LANDMARK_NAMES, MEAN_BGR, VARIANCES

log = logging.getLogger(__name__)

# "landms": the name RetinaFace-family tools expect for the raw landmark regressions (our code
# calls them landmark_deltas); kept so graphs exported before and after read the same
RAW_OUTPUTS = ("loc", "conf", "landms")
DECODED_OUTPUTS = ("boxes", "scores", "landmarks")


class DecodedModel(nn.Module):
    """Wraps a model so that its outputs are decoded boxes/scores/landmarks in input pixels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        loc, conf, landmark_deltas = self.model(x)
        p = pixel_priors(x.shape[2], x.shape[3], x.dtype)[None]
        return decode(loc, p), torch.softmax(conf, dim=-1)[..., 1], decode_landmarks(landmark_deltas, p)


class WithFeatures(nn.Module):
    """Wraps a FeatherFace model so that its graph also returns the feature maps distillation
    compares (``model(x, return_features=True)``): ``loc, conf, landms, feat0, feat1, feat2``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (loc, conf, landmark_deltas), feats = self.model(x, return_features=True)
        return (loc, conf, landmark_deltas, *feats)


def export_onnx(model: nn.Module, path: str | Path, arch: str, height: int = 640, width: int = 640,
                decode: bool = False, opset: int = 17, score_threshold: float | None = None,
                features: bool = False) -> Path:
    """Export ``model`` to ONNX at ``path`` (see the module docstring for the contract).
    ``score_threshold``: the checkpoint's recommended default, recorded in the metadata.
    ``features``: the raw outputs plus the feature maps distillation compares (``feat0..2``,
    :class:`WithFeatures`), for a distillation teacher; not with ``decode``."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..models.fuse import fold_channel_shuffle

    # Nano's channel shuffles folded into the heads' first convs: same outputs, three copies fewer
    model = fold_channel_shuffle(model.eval().cpu())
    if decode and features:
        raise ValueError("decode and features exclude each other")
    net = DecodedModel(model) if decode else WithFeatures(model) if features else model
    names = DECODED_OUTPUTS if decode else RAW_OUTPUTS
    dyn = {"input": {0: "batch", 2: "height", 3: "width"}}
    for n in names:
        dyn[n] = {0: "batch", 1: "anchors"}
    if features:
        names = (*names, "feat0", "feat1", "feat2")
        dyn.update({n: {0: "batch"} for n in names[3:]})
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
            worst[n] = max(worst.get(n, 0.0), float((r - torch.from_numpy(o)).abs().max()))
    return worst
