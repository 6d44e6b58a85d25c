"""Pieces shared by the commands: detector options and the default location of ``../shared``."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

# the defaults every detector flag starts from (a module of dataclasses: cheap to import)
from ..core.settings import DETECTOR, MAX_LONG_SIDE, DetectorSettings, help_of


#: CPU threads by default. One: on a busy 2-core machine the engines' all-core default made a folder
#: run several times slower (README, "Threads"), and batch runs parallelise across files instead.
DEFAULT_THREADS = 1


def int_at_least(low: int):
    """argparse type: an integer >= ``low`` (checked at parse time, one-line error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def probability(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a float >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def byte(text: str) -> int:
    """argparse type: an integer in 0..255 (a colour channel)."""
    value = int_at_least(0)(text)
    if value > 255:
        raise argparse.ArgumentTypeError(f"must be in 0..255, got {value}")
    return value


def port(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    value = int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {value}")
    return value


def long_side_value(text: str) -> int:
    """argparse type for ``--long-side``: 0 (original size) or 32..MAX_LONG_SIDE, as the library accepts."""
    value = int_at_least(0)(text)
    if 0 < value < 32 or value > MAX_LONG_SIDE:
        raise argparse.ArgumentTypeError(f"must be 0 (original size) or in 32..{MAX_LONG_SIDE}, got {value}")
    return value


def second_pass_value(text: str) -> int | str:
    """argparse type for ``anonymize --second-pass``: ``full``, 0 (none) or a long side >= 32."""
    return "full" if text == "full" else long_side_value(text)


def is_loopback(host: str) -> bool:
    """Whether a listening address is reachable from this machine only."""
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def default_shared() -> Path:
    """The project's shared inputs: ``$FEATHERFACE_SHARED`` or ``../shared`` from the current folder."""
    return Path(os.environ.get("FEATHERFACE_SHARED", Path.cwd().parent / "shared"))


def model_weights(name: str) -> str:
    """``--model`` value -> weights: ``"v1"`` is the bundled/``$FEATHERFACE_WEIGHTS`` file when there
    is one, else the official checkpoint in ``<shared>/weights`` (converted in memory, strictly);
    anything else is passed through."""
    import logging

    from ..core.weights import resolve_weights

    if name != "v1":
        return name
    try:
        resolve_weights("v1", torch_backend=True)
        return name
    except FileNotFoundError:
        official = default_shared() / "weights" / "featherface_v1_official.pth"
        if official.is_file():
            logging.getLogger(__name__).info("--model v1: using the official V1 checkpoint %s", official)
            return str(official)
        raise


def add_detector_args(p: argparse.ArgumentParser, score: float | None = None, long_side: int | None = DETECTOR.long_side,
                      landmarks: bool = True) -> None:
    """The detector's flags; defaults and help from :class:`featherface.core.settings.DetectorSettings`
    (``score``: another default threshold, e.g. anonymisation's; ``long_side``: evaluation's None;
    ``landmarks=False``: a command that uses boxes only, without ``--refine-landmarks``)."""
    def helped(name: str) -> str:
        return help_of(DetectorSettings, name)

    p.add_argument("--model", default="nano", help="'nano', 'nano-int8', 'v1', an .onnx graph, a checkpoint (.pt), "
                   "or an official V1 / RetinaFace-MobileNet0.25 .pth (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="(default: %(default)s)")
    p.add_argument("--backend", default=None, choices=["onnxruntime", "openvino", "torch"],
                   help="inference engine (default: onnxruntime for graphs and bundled names, torch for checkpoints)")
    p.add_argument("--threads", type=int_at_least(0), default=DEFAULT_THREADS,
                   help="CPU threads (0 = the engine's default: all cores; default: %(default)s)")
    p.add_argument("--score-threshold", type=probability, default=score,
                   help=helped("score_threshold") if score is None else "minimum face score (default: %(default)s)")
    p.add_argument("--nms-iou", type=probability, default=DETECTOR.nms_iou, help=helped("nms_iou"))
    p.add_argument("--top-k", type=int_at_least(1), default=DETECTOR.top_k, help=helped("top_k"))
    p.add_argument("--keep-top-k", type=int_at_least(1), default=DETECTOR.keep_top_k, help=helped("keep_top_k"))
    p.add_argument("--box-voting", default=DETECTOR.box_voting, action=argparse.BooleanOptionalAction,
                   help=helped("box_voting"))
    p.add_argument("--long-side", type=long_side_value, default=long_side, help=helped("long_side"))
    if landmarks:
        p.add_argument("--refine-landmarks", default=DETECTOR.refine_landmarks, action=argparse.BooleanOptionalAction,
                       help=helped("refine_landmarks"))


def build_detector(args: argparse.Namespace, model_override: str | None = None, **overrides):
    """A :class:`FaceDetector` from the options of :func:`add_detector_args` (``overrides`` win;
    ``model_override``: another model with the same options)."""
    from ..core.detector import FaceDetector

    kw = dict(score_threshold=args.score_threshold, nms_iou=args.nms_iou, top_k=args.top_k, keep_top_k=args.keep_top_k,
              box_voting=args.box_voting, long_side=args.long_side or None,
              refine_landmarks=getattr(args, "refine_landmarks", False))  # boxes-only commands: no second look
    kw.update(overrides)
    return FaceDetector.from_pretrained(model_weights(model_override or args.model), device=args.device, backend=args.backend,
                                        num_threads=args.threads or None, **kw)
