"""``featherface evaluate`` (human labels, or the WIDER FACE protocol) and ``featherface check-data``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..core.errors import UsageError
from ..core.settings import DETECTOR
from .common import add_detector_args, build_detector

log = logging.getLogger(__name__)


def cmd_evaluate_labels(args: argparse.Namespace) -> int:
    from ..evaluation.labelled import bootstrap_ap, evaluate_on_labels, interval, plot_pr_curve
    from ..core.files import write_json

    if args.images is None:
        raise ValueError("--labels needs --images (the folder the labelled image names are relative to)")
    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap must be >= 0 (0: no interval), got {args.bootstrap}")
    if args.compare is not None and str(args.compare) == str(args.model):
        raise ValueError(f"--compare {args.compare} is the --model itself")
    long_side = DETECTOR.long_side if args.long_side is None else (None if args.long_side <= 0 else args.long_side)
    classes = set(args.classes.split(",")) if args.classes else None
    from ..data.face_labels import read_face_labels

    images = Path(args.images)
    if not images.is_dir():
        raise UsageError(f"--images {images}: {'not a folder' if images.exists() else 'no such folder'}")
    labels = read_face_labels(Path(args.labels), classes)  # read once, for the check and every model
    names = list(labels)
    absent = [n for n in names if not (images / n).is_file()]
    # an AP over images that are not there counts their faces as missed: a wrong number, not a result
    if names and len(absent) == len(names):
        what = "holds no files" if not any(images.iterdir()) else f"holds none of the {len(names)} images {args.labels} labels"
        raise UsageError(f"{images} {what} (e.g. {absent[0]}); check --images")
    if absent and not args.skip_missing:
        raise UsageError(f"{len(absent)} of {len(names)} labelled images are missing from {images} (e.g. "
                         f"{', '.join(absent[:3])}); add them, or --skip-missing to score the {len(names) - len(absent)} "
                         "that are there")
    if absent:
        log.warning("--skip-missing: %d of %d labelled images are not in %s and are left out of the scores",
                    len(absent), len(names), images)
        missing_names = set(absent)
        labels = {n: a for n, a in labels.items() if n not in missing_names}
    # boxes are scored; the landmarks' second look runs only when the labels have points to compare
    refine = args.refine_landmarks and any(a.has_landmarks.any() for a in labels.values())
    det = build_detector(args, score_threshold=args.score_threshold, long_side=None, refine_landmarks=refine)
    result, protocol, missing = evaluate_on_labels(det, images, Path(args.labels), long_side, classes, labels=labels)
    protocol["left_out_missing"] = len(absent)
    protocol.update({"model": str(args.model), "arch": det.arch, "backend": args.backend, "refine_landmarks": refine})
    results = {str(args.model): result}
    if args.compare is not None:  # same options, the other weights, their own threshold unless one is given
        other_args = argparse.Namespace(**{**vars(args), "model": args.compare})
        other_det = build_detector(other_args, score_threshold=args.score_threshold, long_side=None,
                                   refine_landmarks=refine)
        results[str(args.compare)] = evaluate_on_labels(other_det, images, Path(args.labels), long_side, classes,
                                                        labels=labels)[0]
    extra: dict = {}
    samples = bootstrap_ap(list(results.values()), args.bootstrap) if args.bootstrap > 0 else None
    if samples is not None:
        extra = {"ap_ci95": list(interval(samples[:, 0])),
                 "bootstrap": {"resamples": args.bootstrap, "seed": 0, "unit": "image"}}
    if args.compare is not None:
        other = results[str(args.compare)]
        extra["compare"] = {"model": str(args.compare), **other.to_dict(), "ap_difference": result.ap - other.ap,
                            "ap_difference_ci95": None if samples is None else list(interval(samples[:, 0] - samples[:, 1]))}
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "result.json", {**result.to_dict(), **extra, "protocol": protocol, "missing_images": missing})
    try:
        plot_pr_curve(results, out / "pr_curve.png")
        curve = f", curve: {out / 'pr_curve.png'}"
    except ModuleNotFoundError:
        curve = " (no PR curve: matplotlib not installed)"
    print(f"protocol: {protocol['resize']}, ranking from score {protocol['ranking_score_threshold']}, NMS IoU "
          f"{protocol['nms_iou']}{' + box voting' if protocol['box_voting'] else ''}, keep {protocol['keep_top_k']}; "
          "IoU 0.5, greedy matching in score order, VOC all-point AP")
    if missing:  # there, but damaged: counted as images without detections, and the run says so in its exit code
        print(f"{len(missing)} of {result.num_images} labelled images unreadable under {images} "
              f"(counted as images without detections), e.g. {missing[:3]}", file=sys.stderr)
    print(result.summary())
    if samples is not None:
        lo, hi = extra["ap_ci95"]
        print(f"AP 95 % interval {lo:.4f}-{hi:.4f} ({args.bootstrap} resamples of the images: what another set of "
              f"this kind and size could show)")
    if args.compare is not None:
        c = extra["compare"]
        paired = "" if samples is None else " [{:+.4f}, {:+.4f}] (95 %, paired resamples)".format(*c["ap_difference_ci95"])
        print(f"--compare {args.compare}: AP {c['ap']:.4f} | AP (faces >= 16 px) {c['ap_16']:.4f}; "
              f"difference {c['ap_difference']:+.4f}{paired}")
    print(f"result: {out / 'result.json'}{curve}")
    return 1 if missing else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..apps.batch import check_writable

    check_writable(args.output)  # before any work, not after it
    if args.labels is not None:
        return cmd_evaluate_labels(args)
    if args.compare is not None:
        raise ValueError("--compare works with --labels (the WIDER FACE protocol scores one model)")
    from ..data.annotations import load_mat_ground_truth
    from ..evaluation.widerface import evaluate_predictions, read_prediction_folder, run_model_on_val, save_report

    if args.long_side is None:
        args.long_side = 0  # the WIDER FACE protocol runs at the original size
    if args.score_threshold is None:
        args.score_threshold = 0.02
    gt = load_mat_ground_truth(args.gt)
    out: Path = args.output
    protocol = {"ground_truth": str(args.gt)}
    if args.predictions is None:
        if args.images is None:
            raise ValueError("give --images (WIDER_val/images folder, to run a model) or --predictions (a folder of result files)")

        listed = [(event, name) for event, name, _, _ in gt]
        if listed and not any((Path(args.images) / event / f"{name}.jpg").is_file() for event, name in listed):
            print(f"featherface evaluate: error: {args.images} holds none of the {len(listed)} validation images "
                  f"(expected <event>/<image>.jpg, e.g. {listed[0][0]}/{listed[0][1]}.jpg); check --images", file=sys.stderr)
            return 1
        det = build_detector(args, refine_landmarks=False)  # WIDER FACE scores boxes
        pred_dir = out / "predictions"
        absent = run_model_on_val(det, Path(args.images), gt, pred_dir)
        if absent:
            log.warning("%d of %d validation images are missing from %s (first: %s); they count as images "
                        "with no detections", len(absent), gt.num_images, args.images, ", ".join(absent[:3]))
        protocol.update({"model": str(args.model), "arch": det.arch,
                         "resize": "original size" if det.long_side is None else f"long side resized to {det.long_side}",
                         "score_threshold": det.cfg.score_threshold, "top_k": det.cfg.top_k, "nms_iou": det.cfg.nms_iou,
                         "box_voting": det.cfg.box_voting, "keep_top_k": det.cfg.keep_top_k, "images_missing_from_folder": len(absent)})
    else:
        pred_dir = Path(args.predictions)
        protocol.update({"predictions": str(pred_dir)})
    preds = read_prediction_folder(pred_dir)
    result = evaluate_predictions(preds, gt)
    report = save_report(result, out, protocol)
    if "resize" in protocol:
        print(f"protocol: {protocol['resize']}, score threshold {protocol['score_threshold']}, top-k {protocol['top_k']}, "
              f"NMS IoU {protocol['nms_iou']}{' + box voting' if protocol.get('box_voting') else ''}, keep {protocol['keep_top_k']}; "
              "IoU 0.5, 1000 thresholds")
    if protocol.get("images_missing_from_folder"):
        print(f"{protocol['images_missing_from_folder']} of {gt.num_images} validation images missing from {args.images} "
              "(evaluated as images without detections; see the log for names)")
    print(result.summary())
    if result.missing:
        print(f"{len(result.missing)} of {gt.num_images} images had no prediction file (counted as no detections), e.g. {result.missing[:3]}")
    print(f"report: {report}  curves: {out / 'pr_curves.png'}")
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    from ..data.checks import check_dataset

    problems, summary = check_dataset(Path(args.labels), Path(args.images) if args.images else None)
    print(summary)
    for p in problems[: args.max_problems]:
        print(f"  {p}")
    if len(problems) > args.max_problems:
        print(f"  ... and {len(problems) - args.max_problems} more")
    return 1 if problems else 0


def register_cli(sub) -> None:

    p = sub.add_parser("evaluate", help="AP against human labels (--labels: labels.json, VOC XML folder, COCO JSON, "
                       "WIDER text), or WIDER FACE val AP (Easy/Medium/Hard) with the official protocol")
    p.add_argument("--images", type=Path, help="folder of the labelled images, or WIDER_val/images (<event>/<image>.jpg)")
    p.add_argument("--labels", type=Path, help="human labels: labels.json, a folder of Pascal VOC .xml, COCO .json, "
                   "or a WIDER/RetinaFace .txt (resize default: long side 640)")
    p.add_argument("--classes", help="with --labels: comma-separated VOC/COCO class names that are faces (default: all)")
    p.add_argument("--compare", metavar="MODEL", help="with --labels: also score MODEL (same options, its own "
                   "threshold) and print the AP difference --model minus MODEL with its paired interval")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="with --labels: 95 %% interval of the AP from N resamples of the images (0: none)")
    p.add_argument("--predictions", type=Path, help="evaluate an existing folder of <event>/<image>.txt result files instead")
    p.add_argument("--gt", type=Path, default=Path("../shared/widerface/ground_truth"), help="folder with the official .mat files")
    p.add_argument("--skip-missing", action="store_true",
                   help="with --labels: score the labelled images that are in --images and leave the others out "
                        "(default: refuse, since their faces would count as missed)")
    p.add_argument("--output", "-o", type=Path, default=Path("eval_out"),
                   help="folder for result.json and the PR curve (default: %(default)s)")
    add_detector_args(p, score=None, long_side=None)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("check-data", help="report problems in a WIDER-style dataset (labels and images)")
    p.add_argument("labels", type=Path, help="label.txt (RetinaFace) or wider_face_*_bbx_gt.txt (official)")
    p.add_argument("--images", type=Path, help="image root the label paths are relative to")
    p.add_argument("--max-problems", type=int, default=50, help="stop listing after this many (default: %(default)s)")
    p.set_defaults(func=cmd_check_data)
