"""``featherface <command>``: the only place with argparse, printing, exit codes and default paths;
thin wrappers over the library.

Commands: info, convert, detect, export, benchmark, evaluate, check-data, train, distill.
Each handler imports what it needs lazily so that ``featherface info`` starts fast.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .common import add_detector_args, build_detector

log = logging.getLogger("featherface")


def cmd_info(args: argparse.Namespace) -> int:
    from ..profiling import info_table

    if min(args.size) < 32:
        raise ValueError(f"--size must be at least 32 x 32, got {args.size[0]} x {args.size[1]}")

    print(info_table(height=args.size[0], width=args.size[1]))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from ..convert import convert_official

    meta = convert_official(args.src, args.dst, args.arch)
    print(f"wrote {args.dst} (arch {meta['arch']}, source sha256 {meta['source_sha256'][:12]}...)")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from .detect import list_sources, run_detect

    files = list_sources(args.source)  # fail on a bad SOURCE before loading any model
    return run_detect(args, files, build_detector(args))


class _Parser(argparse.ArgumentParser):
    """Sub-command parser whose --help shows every option's default."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="featherface", description="Tiny face detectors: FeatherFace V1 and Nano.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    p.add_argument("--output", "-o", type=Path, default=Path("featherface_out"),
                   help="output folder (default: %(default)s); never one that would overwrite the inputs")
    p.add_argument("--no-draw", action="store_true", help="write only the JSON, no annotated media")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: skip files already in <output>/detections.jsonl")
    p.add_argument("--max-pixels", type=int, default=40_000_000,
                   help="refuse images larger than this at the network input (memory guard; default: %(default)s)")
    add_detector_args(p)
    p.set_defaults(func=cmd_detect)

    for register in _extra_registrations():
        register(sub)
    return parser


def _extra_registrations():
    """Sub-commands defined in their own modules of this package."""
    from . import benchmark, evaluate, export, train

    return [export.register_cli, benchmark.register_cli, evaluate.register_cli, train.register_cli]


OPTIONAL_PACKAGES = {"onnx", "onnxruntime", "onnxscript", "matplotlib", "openvino"}


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
        from ..checkpoint import CheckpointError

        if isinstance(exc, CheckpointError) and not args.verbose:
            print(f"featherface {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
