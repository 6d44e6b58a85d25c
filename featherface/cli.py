"""``featherface <command>``: thin wrappers over the library.

Commands: info, convert, detect, export, benchmark, evaluate, check-data, train, distill.
Each handler imports what it needs lazily so that ``featherface info`` starts fast.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("featherface")


def cmd_info(args: argparse.Namespace) -> int:
    from .profiling import info_table

    print(info_table(height=args.size[0], width=args.size[1]))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert_official

    meta = convert_official(args.src, args.dst, args.arch)
    print(f"wrote {args.dst} (arch {meta['arch']}, source sha256 {meta['source_sha256'][:12]}...)")
    return 0


def _detector(args: argparse.Namespace, **overrides):
    from .detector import FaceDetector

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    kw = dict(score_threshold=args.score_threshold, nms_iou=args.nms_iou, top_k=args.top_k,
              keep_top_k=args.keep_top_k, long_side=None if not args.long_side or args.long_side <= 0 else args.long_side)
    kw.update(overrides)
    return FaceDetector.from_pretrained(args.model, device=args.device, backend=args.backend,
                                        num_threads=args.threads, **kw)


def cmd_detect(args: argparse.Namespace) -> int:
    from .detect_cli import run_detect
    from .media import list_sources

    files = list_sources(args.source)  # fail on a bad SOURCE before loading any model
    return run_detect(args, files, _detector(args))


def _add_detector_args(p: argparse.ArgumentParser, score: float | None = None, long_side: int = 640) -> None:
    p.add_argument("--model", default="nano", help="'nano', 'v1', a checkpoint (.pt), an official V1 or RetinaFace-MobileNet0.25 .pth, or an .onnx file")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = library default)")
    p.add_argument("--score-threshold", type=float, default=score,
                   help="minimum face score (default: the checkpoint's recommended value, else 0.5)" if score is None else None)
    p.add_argument("--nms-iou", type=float, default=0.4)
    p.add_argument("--top-k", type=int, default=5000, help="candidates kept before NMS")
    p.add_argument("--keep-top-k", type=int, default=750, help="detections kept after NMS")
    p.add_argument("--long-side", type=int, default=long_side, help="resize so the long side has this many pixels; 0 = original size")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="featherface", description="Tiny face detectors: FeatherFace V1 and Nano.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="parameter breakdown and FLOPs of V1, Nano and the RetinaFace-MobileNet0.25 baseline")
    p.add_argument("--size", type=int, nargs=2, default=(640, 640), metavar=("H", "W"))
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="official V1 / RetinaFace-MobileNet0.25 state_dict -> FeatherFace checkpoint")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--arch", choices=["v1", "retinaface"], help="default: recognised from the keys")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("detect", help="detect faces in an image, a folder, a glob or a video")
    p.add_argument("source", help="image, folder, glob pattern (quote it) or video file")
    p.add_argument("--output", "-o", type=Path, default=Path("featherface_out"), help="output folder")
    p.add_argument("--no-draw", action="store_true", help="write only the JSON, no annotated media")
    _add_detector_args(p)
    p.set_defaults(func=cmd_detect)

    for register in _extra_registrations():
        register(sub)
    return parser


def _extra_registrations():
    """Sub-command groups defined next to the code they drive."""
    regs = []
    for mod, attr in (("export", "register_cli"), ("benchmark", "register_cli"),
                      ("evaluation.cli", "register_cli"), ("training.cli", "register_cli")):
        try:
            module = __import__(f"featherface.{mod}", fromlist=[attr])
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("featherface"):
                continue
            raise
        regs.append(getattr(module, attr))
    return regs


OPTIONAL_PACKAGES = {"onnx", "onnxruntime", "onnxscript", "matplotlib"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        # Optional dependencies (onnx, onnxruntime, matplotlib) live in extras.
        if args.verbose or not exc.name or exc.name.split(".")[0] not in OPTIONAL_PACKAGES:
            raise
        print(f"featherface {args.command}: error: needs the optional package '{exc.name}': "
              f"pip install 'featherface[all]' (or -e '.[all]' in a checkout)", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        # Bad input: one clear line, no traceback (use -v to see where it came from).
        if args.verbose:
            raise
        print(f"featherface {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from .checkpoint import CheckpointError

        if isinstance(exc, CheckpointError) and not args.verbose:
            print(f"featherface {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
