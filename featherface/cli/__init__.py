"""``featherface <command>``: the only place with argparse, printing, exit codes and default paths;
thin wrappers over the library.

Commands: detect, anonymize, crop, evaluate, check-data, info, convert, export, benchmark, train, distill.
Each handler imports what it needs lazily so that ``featherface info`` starts fast.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


log = logging.getLogger("featherface")


def cmd_info(args: argparse.Namespace) -> int:
    from ..models.profiling import info_table

    if min(args.size) < 32:
        raise ValueError(f"--size must be at least 32 x 32, got {args.size[0]} x {args.size[1]}")

    print(info_table(height=args.size[0], width=args.size[1]))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from ..models.convert import convert_official

    meta = convert_official(args.src, args.dst, args.arch)
    print(f"wrote {args.dst} (arch {meta['arch']}, source sha256 {meta['source_sha256'][:12]}...)")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: ...)" to an option's help unless the help already says its default, or the
    default is nothing to show (None, a flag's False/True)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or not action.option_strings or action.default in (None, False, True, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Sub-command parser whose --help shows every option's default."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """A bad option: one line on stderr and exit code 2 (``--help`` shows the usage)."""
        extra = message.partition("unrecognized arguments: ")[2].split()
        if extra and any(Path(a).exists() for a in extra):
            # several files where one SOURCE goes: most often a glob the shell expanded
            message += ("; one SOURCE per run: quote a glob so the shell leaves it to featherface ('photos/*.jpg'), "
                        "or give the folder")
        self.exit(2, f"{self.prog}: error: {message}\n")


class _CommandParser(_Parser):
    """A command's parser: ``-v`` / ``-q`` work after the command too (``featherface detect x -q``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # SUPPRESS: not given here leaves the value given before the command (or its default)
        self.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="featherface", description="Tiny face detectors: FeatherFace V1 and Nano.")
    from importlib.metadata import version

    parser.add_argument("--version", action="version", version=f"featherface {version('featherface')}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors (no progress bars or summaries)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)

    p = sub.add_parser("info", help="parameter breakdown and FLOPs of V1, Nano and the RetinaFace-MobileNet0.25 baseline")
    p.add_argument("--size", type=int, nargs=2, default=(640, 640), metavar=("H", "W"),
                   help="input size the FLOPs are counted at (default: 640 640)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="official V1 / RetinaFace-MobileNet0.25 state_dict -> FeatherFace checkpoint")
    p.add_argument("src", type=Path, help="the released .pth (state_dict)")
    p.add_argument("dst", type=Path, help="the FeatherFace checkpoint (.pt) to write")
    p.add_argument("--arch", choices=["v1", "retinaface"], help="default: recognised from the keys")
    p.set_defaults(func=cmd_convert)

    for register in _extra_registrations():
        register(sub)
    return parser


def _extra_registrations():
    """Sub-commands defined in their own modules of this package."""
    from . import benchmark, evaluate, export, jobs, serve, web

    try:
        from . import train
        register_train = train.register_cli
    except ImportError:  # the [train] extra (torch, pyyaml) is not installed
        register_train = _train_missing
    return [jobs.register_cli, web.register_cli, serve.register_cli, export.register_cli, benchmark.register_cli, evaluate.register_cli,
            register_train]


def _train_missing(sub) -> None:
    def missing(args):
        from ..core.runners import require

        require("torch", "train")
        require("yaml", "train")
        return 2
    for name in ("train", "distill"):
        p = sub.add_parser(name, help=f"{name} a detector (needs the [train] extra)", add_help=True)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=missing)


#: Exit codes (README, "Exit codes").
EXIT_OK, EXIT_FAILED_FILES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad option (one line, exit code 2)
        return int(exc.code or 0)
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    args.quiet = args.quiet or False
    _sigterm_as_interrupt()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        resumable = args.command in ("detect", "anonymize", "crop")
        print(f"featherface {args.command}: interrupted" + (f"; rerun with --resume to continue in {args.output}"
                                                            if resumable else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every user error is one line; -v shows the traceback
        if args.verbose or not _is_user_error(exc):
            raise
        print(f"featherface {args.command}: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _sigterm_as_interrupt() -> None:
    """SIGTERM (a service manager, ``kill``) stops a command as Ctrl-C does: the run closes its
    records and says how to resume. ``serve`` installs its own handling (draining)."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


#: optional packages -> the extra that installs them
EXTRA_OF = {"torch": "torch", "onnx": "torch", "openvino": "openvino", "matplotlib": "plot", "scipy": "eval",
            "yaml": "train", "imageio_ffmpeg": "video", "ray": "ray", "pyarrow": "ray", "cv2": "opencv", "onnxruntime": None,
            "uvicorn": "serve", "starlette": "serve", "prometheus_client": "serve", "multipart": "serve"}


def _is_user_error(exc: Exception) -> bool:
    from ..core.errors import FeatherFaceError
    from ..core.runners import MissingExtra

    if isinstance(exc, FeatherFaceError):
        return True
    if isinstance(exc, (FileNotFoundError, ValueError, MissingExtra, PermissionError, IsADirectoryError)):
        return True
    if isinstance(exc, ModuleNotFoundError):  # an optional package of an extra
        return (exc.name or "").split(".")[0] in EXTRA_OF
    return type(exc).__name__ == "CheckpointError"


def _message(exc: Exception) -> str:
    if isinstance(exc, ModuleNotFoundError) and not type(exc).__name__ == "MissingExtra":
        name = (exc.name or "").split(".")[0]
        extra = EXTRA_OF[name]
        fix = f"pip install 'featherface[{extra}]'" if extra else f"pip install {name}"
        return f"needs the optional package {name!r}: {fix}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {exc.strerror or text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
