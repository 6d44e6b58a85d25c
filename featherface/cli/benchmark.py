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
    if args.roofline:
        return _roofline(args, models, command)
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
                                      args.accuracy_only, tuple(args.threads), args.warmup, args.repeat, command,
                                      graphs={"FeatherFace Nano INT8": args.int8} if args.int8 else None)
        for name in ("accuracy.md", "peers.md"):
            if (args.output / name).is_file() and (name != "peers.md" or "rows" in result):
                print((args.output / name).read_text())
        return 0
    from ..benchmarks.speed import benchmark_models

    benchmark_models(models, args.output, image=args.image, threads=tuple(args.threads),
                     warmup=args.warmup, repeat=args.repeat, command=command)
    print((args.output / "benchmark.md").read_text())
    return 0


# the peer graphs measured by --roofline (file in the peers folder -> row name)
ROOFLINE_PEERS = {"yunet_n_dynamic.onnx": "YuNet-n", "scrfd_500m_kps.onnx": "SCRFD-0.5G"}


def _roofline(args: argparse.Namespace, models: dict[str, Path | str], command: str) -> int:
    from ..benchmarks.roofline import measure_roofline, plot_roofline, render_roofline_markdown
    from ..export.graph import export_onnx
    from ..core.files import write_json
    from ..models.loading import load_any, checkpoint_path

    peers_dir = args.peers_dir or default_shared() / "peers"
    work = args.output / "roofline_graphs"
    work.mkdir(parents=True, exist_ok=True)
    ours = {"Nano": models["nano"], "V1": models["v1"], "RetinaFace-MobileNet0.25": peers_dir / "retinaface_mnet0.25_biubug6.pth"}
    graphs = {}
    for name, weights in ours.items():
        if Path(str(weights)).suffix and not Path(str(weights)).is_file():
            log.warning("%s: %s not found, skipped", name, weights)
            continue
        model, ckpt = load_any(checkpoint_path(str(weights)))
        graphs[name] = export_onnx(model, work / f"{ckpt.get('arch', name)}.onnx", ckpt.get("arch", "?"), 480, 640)
    if args.int8:
        graphs["Nano INT8"] = args.int8
    for file, name in ROOFLINE_PEERS.items():
        if (peers_dir / file).is_file():
            graphs[name] = peers_dir / file
    result = measure_roofline(graphs, work, threads=args.threads[0], warmup=args.warmup, repeat=args.repeat)
    write_json(args.output / "roofline.json", {**result, "command": command})
    (args.output / "roofline.md").write_text(render_roofline_markdown(result, command))
    plot_roofline(result, args.output / "roofline.png")
    print((args.output / "roofline.md").read_text())
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("benchmark", help="V1 vs Nano: size, FLOPs, memory, latency (PyTorch and onnxruntime)")
    p.add_argument("--v1", default="v1", help="V1 weights: 'v1', a checkpoint or the official .pth")
    p.add_argument("--nano", default="nano", help="Nano weights: 'nano' or a checkpoint")
    p.add_argument("--image", type=Path, default=None, help="photo used for timing (post-processing depends on it)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to time (default: 1 2)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs before timing (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=30, help="timed runs per setting (default: %(default)s)")
    p.add_argument("--output", "-o", type=Path, default=Path("benchmark_out"),
                   help="folder for the report (default: %(default)s)")
    p.add_argument("--peers", action="store_true", help="also run RetinaFace-MobileNet and the peer detectors")
    p.add_argument("--peers-dir", type=Path, default=None, help="folder with the peer model files (default ../shared/peers)")
    p.add_argument("--images", type=Path, nargs="+", default=None,
                   help="--peers: photos for the agreement with V1 (default ../shared/images); with --labels: the "
                        "labelled images, one folder per labels file")
    p.add_argument("--labels", type=Path, nargs="+", default=None,
                   help="--peers: human labels (labels.json, VOC folder, COCO .json); adds AP against them for every detector")
    p.add_argument("--accuracy-only", action="store_true", help="--peers --labels: skip latency and agreement")
    p.add_argument("--int8", type=Path, default=None,
                   help="--peers/--roofline: Nano's INT8 graph from `featherface export --int8` (onnxruntime and OpenVINO rows)")
    p.add_argument("--roofline", action="store_true",
                   help="achieved GFLOP/s of Nano, V1, RetinaFace, YuNet-n and SCRFD-0.5G vs this CPU's measured peak "
                        "(first --threads value, network only, 640x480)")
    p.set_defaults(func=cmd_benchmark)
