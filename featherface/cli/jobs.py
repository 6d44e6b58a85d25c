"""``featherface detect``, ``anonymize`` and ``crop``: thin wrappers over :mod:`featherface.apps.batch`."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# anonymise's detection and mask defaults (core/settings.py says where they were chosen)
from ..core.errors import UsageError
from ..core.settings import ANONYMIZE, MAX_CROP_SIZE, MODES, SHAPES, WORKERS, AnonymizeSettings, help_of
from .common import add_detector_args, build_detector, byte, int_at_least, non_negative_float, second_pass_value

log = logging.getLogger(__name__)

#: ``--ray`` without an address: a Ray instance started on this machine for the run
LOCAL = "local"


def _progress(quiet: bool):
    from tqdm import tqdm

    def wrap(iterable, total=None):
        return tqdm(iterable, total=total, unit="file" if isinstance(iterable, list) else "frame",
                    disable=True if quiet or (total is not None and total <= 1) else None, leave=False)
    return wrap


def _source(args: argparse.Namespace) -> str:
    from ..core.weights import EXAMPLE_IMAGE

    if args.example:
        if args.source:
            raise ValueError("give a SOURCE or --example, not both")
        return str(EXAMPLE_IMAGE)
    if not args.source:
        raise ValueError("give a SOURCE (image, folder, quoted glob or video) or --example")
    return args.source


def run_job(args: argparse.Namespace, make_job, images_only: bool = False) -> int:
    from ..apps.batch import Listing, list_sources, run_batch

    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --output and --overwrite replaces it: give one of them")
    if args.retry_failed and not args.resume:
        raise UsageError("--retry-failed applies to a resumed run: add --resume")
    from ..core.files import is_video

    listing = list_sources(_source(args))  # a bad SOURCE fails before any model loads
    if images_only:
        videos = [s for s in listing.sources if is_video(s.path)]
        listing = Listing([s for s in listing.sources if not is_video(s.path)],
                          listing.skipped + [(str(s.path), f"{args.command} works on images") for s in videos])
        if not listing.sources:
            raise ValueError(f"{args.command} works on images; no image in {args.source!r}")
    from ..apps.batch import check_writable

    check_writable(args.output)  # before the model loads
    common = dict(draw=not getattr(args, "no_draw", False), resume=args.resume, overwrite=args.overwrite,
                  max_pixels=args.max_pixels, retry_failed=args.retry_failed, progress=_progress(args.quiet))
    if args.ray is not None:
        from ..apps.raydata import run_batch_ray

        # built in the driver and in every Ray actor (pickled with its arguments)
        result = run_batch_ray(lambda: make_job(build_detector(args)), listing, args.output,
                               address=None if args.ray == LOCAL else args.ray, actors=args.actors, **common)
    else:
        result = run_batch(make_job(build_detector(args)), listing, args.output, workers=args.workers, **common)
    s = result.summary
    line = (f"{result.processed} file(s) processed, {result.failed} failed"
            + (f", {result.already_done} already done (--resume)" if result.already_done else "")
            + (f", {result.skipped} passed over" if result.skipped else "")
            + f"; records in {args.output / 'run.jsonl'}, summary in {args.output / 'run.json'}")
    if not args.quiet:
        print(line)
    for f in s["failures"]:
        print(f"failed: {f['error']}", file=sys.stderr)
    return 1 if s["failures"] else 0


def cmd_detect(args: argparse.Namespace) -> int:
    from ..apps.jobs import DetectJob

    return run_job(args, lambda det: DetectJob(det, str(args.model)))


def cmd_anonymize(args: argparse.Namespace) -> int:
    from ..apps.jobs import AnonymizeJob

    def make(det):
        return AnonymizeJob(det, str(args.model), mode=args.mode, shape=args.shape, pad=args.pad,
                            color=tuple(args.color), hold=args.hold, second_pass=args.second_pass or None,
                            flip=args.flip, score_threshold=args.score_threshold)
    return run_job(args, make)


def cmd_crop(args: argparse.Namespace) -> int:
    from ..apps.jobs import CropJob

    if args.align and (args.size < 112 or args.size % 112 or args.size > MAX_CROP_SIZE):
        raise UsageError(f"--size: aligned crops are 112 px or a multiple of it up to {MAX_CROP_SIZE}, got {args.size}")
    if args.landmarks_model and not args.align:
        raise ValueError("--landmarks-model aligns faces: it needs --align")

    def make(det):
        other = _landmark_detector(args) if args.landmarks_model else None
        return CropJob(det, str(args.model), align=args.align, size=args.size, margin=args.margin,
                       landmark_detector=other, landmark_model=str(args.landmarks_model) if other else None)
    return run_job(args, make, images_only=True)


def _landmark_detector(args: argparse.Namespace):
    """``--landmarks-model``: one of our models (or an official RetinaFace/V1 .pth), or an SCRFD
    (``_kps``) / YuNet graph, the most precise landmarks measured (benchmarks/landmark_error.py)."""
    path = Path(args.landmarks_model)
    if path.suffix.lower() == ".onnx" and path.is_file():
        from ..core.runners import graph_output_names, require

        outputs = graph_output_names(path)
        if set(outputs) != {"loc", "conf", "landms"}:  # another detector's graph
            require("cv2", "opencv")
            from ..peers.runners import landmark_runner

            return landmark_runner(path, outputs, num_threads=args.threads or None)
    return build_detector(args, model_override=args.landmarks_model)


def _batch_args(p: argparse.ArgumentParser, out_default: str, score: float | None = None, draw: bool = True,
                videos: bool = True, landmarks: bool = True) -> None:
    p.add_argument("source", nargs="?", help="image, folder, quoted glob pattern" + (", or video" if videos else
                                                                                     " (images only)"))
    p.add_argument("--example", action="store_true", help="run on the example photo inside the package")
    p.add_argument("--output", "-o", type=Path, default=Path(out_default), help="output folder (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --output (same settings)")
    p.add_argument("--retry-failed", action="store_true",
                   help="with --resume: process again the files that failed (default: they keep their error record)")
    p.add_argument("--overwrite", action="store_true",
                   help="allow an --output that holds other files or an earlier run (which is replaced)")
    p.add_argument("--max-pixels", type=int_at_least(1), default=100_000_000,
                   help="refuse images whose header states more pixels (default: %(default)s)")
    if draw:
        p.add_argument("--no-draw", action="store_true", help="write only the records, no images or videos")
    p.add_argument("--workers", type=int_at_least(1), default=WORKERS,
                   help="images processed at once, each on one --threads engine thread (default: the CPUs, at most 4: "
                        "%(default)s here)")
    p.add_argument("--ray", nargs="?", const=LOCAL, metavar="ADDRESS",
                   help="run on Ray Data (the ray extra): alone, on a local Ray instance; with ADDRESS (host:port "
                        "of a `ray start --head`, or auto), on that cluster, whose nodes must see SOURCE and --output")
    p.add_argument("--actors", type=int_at_least(1),
                   help="--ray: detectors working at once (default: the cluster's CPUs)")
    add_detector_args(p, score=score, landmarks=landmarks)


def register_cli(sub) -> None:
    p = sub.add_parser("detect", help="detect faces in images, folders, globs or videos")
    _batch_args(p, "featherface_out")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("anonymize", help="blur, pixelate or fill the faces of images, folders, globs or videos")
    # the masked files are the point; masks need boxes only
    _batch_args(p, "anonymized", score=ANONYMIZE.score_threshold, draw=False, landmarks=False)

    def helped(name: str) -> str:
        return help_of(AnonymizeSettings, name)
    p.add_argument("--mode", choices=MODES, default=ANONYMIZE.mode, help=helped("mode"))
    p.add_argument("--shape", choices=SHAPES, default=ANONYMIZE.shape, help=helped("shape"))
    p.add_argument("--pad", type=non_negative_float, default=ANONYMIZE.pad, help=helped("pad"))
    p.add_argument("--color", type=byte, nargs=3, default=ANONYMIZE.color, metavar=("B", "G", "R"), help=helped("color"))
    p.add_argument("--hold", type=int_at_least(0), default=ANONYMIZE.hold, help=helped("hold"))
    p.add_argument("--second-pass", type=second_pass_value, default=ANONYMIZE.second_pass, metavar="LONG_SIDE",
                   help=helped("second_pass"))
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=ANONYMIZE.flip, help=helped("flip"))
    p.set_defaults(func=cmd_anonymize)

    p = sub.add_parser("crop", help="one crop per face: aligned to the 112x112 ArcFace template, or plain")
    _batch_args(p, "crops", videos=False)
    p.add_argument("--align", action="store_true", help="align to the five-point ArcFace template")
    p.add_argument("--size", type=int_at_least(112), default=112, help="--align: crop size, a multiple of 112")
    p.add_argument("--margin", type=non_negative_float, default=0.2,
                   help="plain crops: margin around the square face box, as a share of its size (default: %(default)s)")
    p.add_argument("--landmarks-model", metavar="MODEL",
                   help="--align with the landmarks of another detector, matched to each face by its box: an SCRFD "
                        "*_kps.onnx or YuNet graph (the [opencv] extra), an official RetinaFace-MobileNet0.25 or V1 .pth, "
                        "or one of our models (README, 'Landmark error')")
    p.set_defaults(func=cmd_crop)
