"""``featherface benchmark``: V1 vs Nano speed/size/memory, and ``--peers`` against other detectors
(with ``--labels``: accuracy against human labels)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .common import default_shared, model_weights

log = logging.getLogger(__name__)


def _set_name(labels: Path, images: Path) -> str:
    """A short name for a labelled set: the folder holding its images/ and labels."""
    if images.name == "images":
        return images.parent.name
    return labels.parent.name if labels.is_file() else labels.name


def cmd_benchmark(args: argparse.Namespace) -> int:
    models = dict(zip(("v1", "nano"), (model_weights(args.v1), args.nano)))
    command = "featherface " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("featherface") else "featherface benchmark"
    if args.peers:
        from ..benchmarks.peers import benchmark_with_peers

        shared = default_shared()
        label_sets = []
        if args.labels:
            images = args.images or []
            if len(images) != len(args.labels):
                raise ValueError("--labels needs one --images folder per labels file, in the same order")
            label_sets = [(_set_name(lab, img), img, lab) for lab, img in zip(args.labels, images)]
        photos = shared / "images" if args.labels or not args.images else args.images[0]
        result = benchmark_with_peers(models, args.output, args.peers_dir or shared / "peers", photos,
                                      args.image or shared / "images" / "crowd_baseball.jpg", label_sets,
                                      args.accuracy_only, tuple(args.threads), args.warmup, args.repeat, command)
        for name in ("accuracy.md", "peers.md"):
            if (args.output / name).is_file() and (name != "peers.md" or "rows" in result):
                print((args.output / name).read_text())
        return 0
    from ..benchmarks.speed import benchmark_models

    benchmark_models(models, args.output, image=args.image, threads=tuple(args.threads),
                     warmup=args.warmup, repeat=args.repeat, command=command)
    print((args.output / "benchmark.md").read_text())
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("benchmark", help="V1 vs Nano: size, FLOPs, memory, latency (PyTorch and onnxruntime)")
    p.add_argument("--v1", default="v1", help="V1 weights: 'v1', a checkpoint or the official .pth")
    p.add_argument("--nano", default="nano", help="Nano weights: 'nano' or a checkpoint")
    p.add_argument("--image", type=Path, default=None, help="photo used for timing (post-processing depends on it)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--output", "-o", type=Path, default=Path("benchmark_out"))
    p.add_argument("--peers", action="store_true", help="also run RetinaFace-MobileNet and the peer detectors")
    p.add_argument("--peers-dir", type=Path, default=None, help="folder with the peer model files (default ../shared/peers)")
    p.add_argument("--images", type=Path, nargs="+", default=None,
                   help="--peers: photos for the agreement with V1 (default ../shared/images); with --labels: the "
                        "labelled images, one folder per labels file")
    p.add_argument("--labels", type=Path, nargs="+", default=None,
                   help="--peers: human labels (labels.json, VOC folder, COCO .json); adds AP against them for every detector")
    p.add_argument("--accuracy-only", action="store_true", help="--peers --labels: skip latency and agreement")
    p.set_defaults(func=cmd_benchmark)
