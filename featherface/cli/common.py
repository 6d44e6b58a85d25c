"""Pieces shared by the commands: detector options and the default location of ``../shared``."""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_shared() -> Path:
    """The project's shared inputs: ``$FEATHERFACE_SHARED`` or ``../shared`` from the current folder."""
    return Path(os.environ.get("FEATHERFACE_SHARED", Path.cwd().parent / "shared"))


def model_weights(name: str) -> str:
    """``--model`` value -> weights: ``"v1"`` is the bundled/``$FEATHERFACE_WEIGHTS`` file when there
    is one, else the official checkpoint in ``<shared>/weights`` (converted in memory, strictly);
    anything else is passed through."""
    import logging

    from ..loading import resolve_weights

    if name != "v1":
        return name
    try:
        resolve_weights("v1")
        return name
    except FileNotFoundError:
        official = default_shared() / "weights" / "featherface_v1_official.pth"
        if official.is_file():
            logging.getLogger(__name__).info("--model v1: using the official V1 checkpoint %s", official)
            return str(official)
        raise


def add_detector_args(p: argparse.ArgumentParser, score: float | None = None, long_side: int | None = 640) -> None:
    p.add_argument("--model", default="nano", help="'nano', 'v1', a checkpoint (.pt), an official V1 or "
                   "RetinaFace-MobileNet0.25 .pth, or an .onnx file (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime", "openvino"],
                   help="inference engine; onnxruntime and openvino need the extras (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = library default)")
    p.add_argument("--score-threshold", type=float, default=score,
                   help="minimum face score (default: the checkpoint's recommended value, else 0.5)" if score is None
                   else "minimum face score (default: %(default)s)")
    p.add_argument("--nms-iou", type=float, default=0.4, help="(default: %(default)s)")
    p.add_argument("--top-k", type=int, default=5000, help="candidates kept before NMS (default: %(default)s)")
    p.add_argument("--keep-top-k", type=int, default=750, help="detections kept after NMS (default: %(default)s)")
    p.add_argument("--no-box-voting", dest="box_voting", action="store_false",
                   help="plain greedy NMS: kept boxes are not replaced by the score-weighted mean of the boxes they "
                        "suppress (the released FeatherFace/RetinaFace behaviour)")
    p.add_argument("--long-side", type=int, default=long_side,
                   help="resize so the long side has this many pixels; 0 = original size (default: %(default)s)")


def build_detector(args: argparse.Namespace, **overrides):
    """A :class:`FaceDetector` from the options of :func:`add_detector_args` (``overrides`` win)."""
    from ..detector import FaceDetector

    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: this PyTorch build sees no CUDA device (use --device cpu)")
    if args.threads:
        torch.set_num_threads(args.threads)
    kw = dict(score_threshold=args.score_threshold, nms_iou=args.nms_iou, top_k=args.top_k, keep_top_k=args.keep_top_k,
              box_voting=args.box_voting, long_side=None if not args.long_side or args.long_side <= 0 else args.long_side)
    kw.update(overrides)
    return FaceDetector.from_pretrained(model_weights(args.model), device=args.device, backend=args.backend,
                                        num_threads=args.threads or None, **kw)
