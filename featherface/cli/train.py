"""``featherface train`` and ``featherface distill``.

Settings come from an optional ``--config`` YAML, overridden by command-line flags; the
resulting config is written to ``<out>/config.yaml``. ``--resume`` continues from
``<out>/last.pt`` with ``<out>/config.yaml``. Multi-process: launch with
``torchrun --nproc_per_node N -m featherface.cli train ...``.
"""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from ..data.transforms import MASK_STYLES, OCCLUDER_STYLES
from ..models import ARCHITECTURES
from ..training.config import LR_SCHEDULES, TEACHER_BACKENDS, TrainConfig

# flag name -> config field; only flags the user actually gives override the config.
_FLAGS = {
    "arch": str, "images": str, "labels": str, "out": str, "init_backbone": str, "init_weights": str,
    "teacher": str, "pseudo_label_threshold": float, "ignore_below": float, "check_image": str,
    "check_min_faces": int, "temperature": float, "alpha": float, "feature_weight": float, "epochs": int,
    "batch_size": int, "lr_per_image": float, "weight_decay": float, "warmup_epochs": float,
    "image_size": int, "epoch_repeats": int, "seed": int, "workers": int, "device": str,
    "save_every_steps": int, "max_steps": int, "val_images": str, "eval_every": int, "pool_labels": list,
    "pool_label_min_score": float, "mosaic_prob": float, "zoom_out_prob": float, "max_upscale": float,
    "mask_prob": float, "mask_style": str, "occlude_prob": float, "occlude_style": str, "occluder_bank": str,
    "negative_prob": float, "min_negatives": int, "lr_schedule": str, "freeze_backbone_steps": int,
    "channels_last": bool, "label_corrected_kd": bool, "label_corrected_full": bool, "ema_decay": float,
    "label_boxes": bool, "box_kd_weight": float, "teacher_backend": str, "feature_focus_weight": float,
    "feature_adapter": bool, "image_weights": str, "label_upscale": float,
}


def _config_from_args(args: argparse.Namespace, mode: str) -> TrainConfig:
    out = Path(args.out) if args.out else None
    if args.resume and out and (out / "config.yaml").is_file() and not args.config:
        base = TrainConfig.from_yaml(out / "config.yaml")
    elif args.config:
        base = TrainConfig.from_yaml(args.config)
    else:
        base = TrainConfig(mode=mode)
    values = {f.name: getattr(base, f.name) for f in fields(TrainConfig)}
    values["mode"] = mode
    for flag in _FLAGS:
        v = getattr(args, flag, None)
        if v is not None:
            values["out_dir" if flag == "out" else flag] = v
    if getattr(args, "online_labels", False):
        values["online_labels"] = True
    if args.milestones is not None:
        values["milestones"] = args.milestones
    if getattr(args, "source_weights", None) is not None:
        values["source_weights"] = dict(args.source_weights)
    return TrainConfig(**values)


def _source_weight(text: str) -> tuple[str, float]:
    """``SOURCE=W`` (a pool source folder and its sampling multiplicity) for ``--source-weights``."""
    name, sep, value = text.partition("=")
    try:
        weight = float(value)
    except ValueError:
        weight = -1.0
    if not sep or not name or weight < 0:
        raise argparse.ArgumentTypeError(f"expected SOURCE=WEIGHT with WEIGHT >= 0, got {text!r}")
    return name, weight


def _run(args: argparse.Namespace, mode: str) -> int:
    from ..training.engine import train

    cfg = _config_from_args(args, mode)
    train(cfg, resume=args.resume)
    print(f"done: {Path(cfg.out_dir) / 'last.pt'} (training state), {Path(cfg.out_dir) / 'model.pt'} (weights), "
          f"{Path(cfg.out_dir) / 'log.csv'} (losses)")
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML with TrainConfig fields (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--out", help="run folder (checkpoints, config.yaml, log.csv)")
    p.add_argument("--images", help="image root (label paths are relative to it; or the photo folder)")
    p.add_argument("--labels", help="label.txt (RetinaFace) or wider_face_*_bbx_gt.txt")
    p.add_argument("--arch", choices=sorted(ARCHITECTURES))
    p.add_argument("--init-backbone", help="backbone to start from: ImageNet MobileNetV1-0.25 weights "
                   "(mobilenet0.25_imagenet_pretrain.tar) or a detector checkpoint (official V1 .pth, our .pt) whose backbone is copied")
    p.add_argument("--init-weights", help="FeatherFace checkpoint to fine-tune")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="per process")
    p.add_argument("--lr-per-image", type=float, help="lr = this x global batch (default 1e-3/32)")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--milestones", type=int, nargs="*", help="epochs where lr is multiplied by 0.1")
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--image-size", type=int)
    p.add_argument("--epoch-repeats", type=int, help="passes over the data per epoch")
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="data-loading processes")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--save-every-steps", type=int, help="also checkpoint every N steps")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps in total")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                   help="step decays at --milestones, cosine to 1%% at the end, or constant after the warm-up")
    p.add_argument("--ema-decay", type=float,
                   help="keep an exponential moving average of the weights with this decay (e.g. 0.999); "
                        "<out>/ema.pt at every checkpoint, model.pt = the EMA weights (default 0: off)")
    p.add_argument("--freeze-backbone-steps", type=int,
                   help="freeze the student's backbone for the first N steps (shared with the teacher when equal)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory layout for the networks and batches (config default: on; faster on CPUs)")


def register_cli(sub) -> None:
    p = sub.add_parser("train", help="train V1 or Nano from labels (WIDER FACE layout)")
    _add_common(p)
    p.set_defaults(func=lambda a: _run(a, "train"))

    p = sub.add_parser("distill", help="train Nano from a teacher (KD), on labels or on teacher pseudo-labels")
    _add_common(p)
    p.add_argument("--teacher", help="teacher: checkpoint, official V1 .pth or RetinaFace-MobileNet0.25 .pth (loaded strictly and checked)")
    p.add_argument("--teacher-backend", choices=TEACHER_BACKENDS,
                   help="run the teacher's forward pass in PyTorch (default) or as a compiled OpenVINO graph (CPU; "
                        "needs the openvino extra; same numbers to ~1e-4; a 384 px step took 0.89x the time on 2 cores)")
    p.add_argument("--pseudo-label-threshold", type=float, help="teacher score for pseudo-labels (default 0.5)")
    p.add_argument("--ignore-below", type=float,
                   help="background anchors the teacher scores as a face with p >= this are not mined as negatives "
                        "by the task loss (KD still teaches them); 0 = off (default)")
    p.add_argument("--label-corrected-kd", action="store_true", default=None,
                   help="leave the positive anchors of labelled faces the teacher missed (--pool-labels) out of the KD "
                        "term, so the label, not the teacher's miss, is learnt there")
    p.add_argument("--label-corrected-full", action="store_true", default=None,
                   help="with --label-corrected-kd: on the anchors left out of KD, the task's classification term "
                        "takes KD's share of the weight too (1 instead of 1 - alpha)")
    p.add_argument("--label-boxes", action="store_true", default=None,
                   help="where a --pool-labels box and a teacher detection are the same face, train on the "
                        "label's box (mapped to the teacher's convention) instead of the teacher's")
    p.add_argument("--label-upscale", type=float,
                   help="with --online-labels: the teacher also runs on each batch magnified this many times "
                        "(e.g. 2), and those detections are the training targets (plus the faces >= 64 px only "
                        "the view-scale pass finds); KD still uses the view-scale pass (default 1: off)")
    p.add_argument("--box-kd-weight", type=float,
                   help="weight of the teacher's box regressions as targets on every anchor it scores as a face with "
                        "p >= 0.1, its faint faces included (smooth-L1; 0 = off, the default)")
    p.add_argument("--feature-focus-weight", type=float,
                   help="weight of a feature-map MSE on the cells around each target face only (fine-grained "
                        "imitation; 0 = off, the default), on top of --feature-weight's MSE over every cell")
    p.add_argument("--feature-adapter", action="store_true",
                   help="with --feature-focus-weight: compare the student's maps through a trainable 1x1 convolution per "
                        "level (identity at the start; trained with the student, not exported)")
    p.add_argument("--check-image", help="photo the teacher must find faces in before training")
    p.add_argument("--check-min-faces", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--alpha", type=float)
    p.add_argument("--feature-weight", type=float)
    p.add_argument("--online-labels", action="store_true",
                   help="label each training crop with the teacher's own output (no labelling pass; photo pool with mosaics)")
    p.add_argument("--pool-labels", nargs="+",
                   help="labels.json files with boxes for pool photos, added where the teacher misses faces: human "
                        "labels, or another detector's (scripts/label_pool.py); the first file listing a photo wins")
    p.add_argument("--pool-label-min-score", type=float,
                   help="a detector's pool labels below this score are not used (default 0.5)")
    p.add_argument("--source-weights", nargs="+", type=_source_weight, metavar="SOURCE=W",
                   help="sampling multiplicity per pool source folder, e.g. masked_faces_rwmfd=4 scut_head_b=2 "
                        "(replaces the built-in table of featherface.data.pool; unlisted sources get 1)")
    p.add_argument("--image-weights", metavar="JSON",
                   help="per-photo sampling factors, multiplying --source-weights: e.g. the photos where the current "
                        "student misses labelled faces, from scripts/mine_hard_photos.py (online labels)")
    p.add_argument("--mosaic-prob", type=float, help="share of 2x2 mosaic samples (online labels)")
    p.add_argument("--zoom-out-prob", type=float, help="share of zoomed-out views (online labels)")
    p.add_argument("--max-upscale", type=float,
                   help="no training view magnifies its photo more than this; smaller photos sit in a mean-colour "
                        "window instead (online labels; default 0: no cap)")
    p.add_argument("--mask-prob", type=float,
                   help="each labelled pool face gets a painted face mask with this probability (online labels; "
                        "default 0: none)")
    p.add_argument("--mask-style", choices=MASK_STYLES,
                   help="painted masks: 'plain' (surgical outline, five colours; the default) or 'varied' "
                        "(also cup-shaped, any colour, striped, worn higher or lower, with ear loops)")
    p.add_argument("--occlude-prob", type=float,
                   help="each labelled pool face is partly covered (up to about half) by a soft blob of texture from "
                        "elsewhere in its photo, as a hand, an arm or a cap covers faces in crowds; it stays a face "
                        "(online labels; default 0: none)")
    p.add_argument("--occlude-style", choices=OCCLUDER_STYLES,
                   help="what covers them: 'photo' (texture from elsewhere in the photo; the default), 'limb' (a narrower, "
                        "longer band in the face's own skin tone, as a raised hand or an arm), 'varied' (either, evenly), "
                        "'cutout' (a real hand or arm from --occluder-bank) or 'mixed' (photo or cutout, evenly)")
    p.add_argument("--occluder-bank", metavar="NPZ",
                   help="hand and arm cut-outs for --occlude-style cutout|mixed, built by scripts/build_occluder_bank.py "
                        "from Clothing Co-Parsing's pixel labels (keep it with the pool, out of git)")
    p.add_argument("--negative-prob", type=float,
                   help="--online-labels: share of samples that are images without faces and without targets (noise of "
                        "random grain, enlarged or shrunk, blurred noise, flat colour, some with painted masks); "
                        "0 = off (default)")
    p.add_argument("--min-negatives", type=int,
                   help="per image at least this many hard negatives in the task loss; 0 (default, RetinaFace's rule) "
                        "mines 7 per positive only, so an image without faces teaches nothing")
    p.add_argument("--val-images", help="held-out photos: agreement AP with the teacher")
    p.add_argument("--eval-every", type=int, help="epochs between evaluations")
    p.set_defaults(func=lambda a: _run(a, "distill"))
