"""Training configuration, declared once.

Each option is one dataclass field in one of four sections (:class:`RunSettings`,
:class:`OptimiserSettings`, :class:`DataSettings`, :class:`DistillationSettings`), declared with
:func:`option`, whose ``help`` text is what ``featherface train --help`` and ``featherface distill
--help`` print: the command line is generated from these fields (``featherface.cli.train``), so an
option has one name in the config, on the command line (``--snake-case`` becomes
``--snake-case`` with dashes), in the loss and in the logs. :class:`TrainConfig` is all four sections
as one flat dataclass (``cfg.alpha``, ``cfg.images``), written as YAML next to the checkpoints.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..data import MASK_STYLES



def invalid_weights(weights: dict) -> dict:
    """The entries of a sampling-weight mapping (source or photo -> weight) whose value is not a
    number >= 0 (booleans, which Python counts as ints, are not numbers here)."""
    return {k: v for k, v in weights.items() if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0}


# the accepted values of the string options, shared with the command line's choices
ARCHS = ("nano", "retinaface", "v1")
MODES = ("train", "distill")
LR_SCHEDULES = ("step", "cosine", "constant")
TEACHER_BACKENDS = ("torch", "openvino")


def option(default: Any, help: str, *, choices: tuple | None = None, distill_only: bool = False,
           flag: bool = True, metavar: str | None = None) -> Any:
    """A config field with its command-line help. ``distill_only``: only ``featherface distill``
    has the flag; ``flag=False``: set by the program (the subcommand), not a flag. Lists take
    their default through a factory."""
    meta = {"help": help, "choices": choices, "distill_only": distill_only, "flag": flag, "metavar": metavar}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunSettings:
    """What to train, where from and where to."""

    arch: str = option("nano", "network to train", choices=ARCHS)
    mode: str = option("train", "train (labels) or distill (teacher + labels or online labels)", choices=MODES, flag=False)
    images: str = option("", "image root: label paths are relative to it (or the photo folder)")
    labels: str | None = option(None, "label.txt (RetinaFace layout) or wider_face_*_bbx_gt.txt; in distill mode "
                                "without it, the teacher labels the photos")
    out: str = option("runs/exp", "run folder: checkpoints, config.yaml, log.csv")
    init_backbone: str | None = option(None, "backbone to start from: ImageNet MobileNetV1-0.25 weights "
                                       "(mobilenet0.25_imagenet_pretrain.tar) or a detector checkpoint (official V1 "
                                       ".pth, a FeatherFace .pt) whose backbone is copied")
    init_weights: str | None = option(None, "FeatherFace checkpoint to fine-tune")
    seed: int = option(0, "seed of the data order and the augmentations (a resumed run replays them)")
    workers: int = option(2, "data-loading processes")
    device: str = option("cpu", "cpu, cuda, cuda:1 ...")
    channels_last: bool = option(True, "NHWC memory layout for the networks and batches (faster on CPUs)")
    save_every_steps: int = option(0, "also checkpoint every N optimiser steps (0: only at epoch ends)")
    max_steps: int = option(0, "stop after N optimiser steps in total (0: no limit)")
    val_images: str | None = option(None, "held-out photos: agreement AP with the teacher every --eval-every epochs")
    eval_every: int = option(0, "epochs between evaluations (0: none)")


@dataclass
class OptimiserSettings:
    """AdamW, the learning-rate schedule and the weight average."""

    epochs: int = option(400, "passes over the data")
    batch_size: int = option(32, "images per step and process (global batch: x processes)")
    lr_per_image: float = option(1e-3 / 32, "learning rate = this x global batch (1e-3 at 32)")
    weight_decay: float = option(5e-4, "AdamW weight decay")
    lr_schedule: str = option("step", "step: x gamma at each milestone; cosine: to 1%% at the end; constant after "
                              "the warm-up", choices=LR_SCHEDULES)
    milestones: list[int] = option([250, 350], "epochs where the step schedule multiplies the rate by gamma")
    gamma: float = option(0.1, "the step schedule's factor")
    warmup_epochs: float = option(5.0, "linear warm-up from 0 (fractions allowed)")
    ema_decay: float = option(0.0, "exponential moving average of the weights and BatchNorm statistics with this "
                              "decay (e.g. 0.999): <out>/ema.pt at every checkpoint and model.pt holds it (0: off)")
    freeze_backbone_steps: int = option(0, "freeze the student's backbone for the first N steps (one pass serves "
                                        "student and teacher when their backbones are equal)")
    grad_clip: float | None = option(10.0, "largest global gradient norm (0: no clipping)")


@dataclass
class DataSettings:
    """Views, sampling and augmentation. The pool options apply to distillation with online labels."""

    image_size: int = option(640, "side of the square training views")
    epoch_repeats: int = option(1, "passes over the data per epoch (small photo sets: fewer loader restarts)")
    online_labels: bool = option(False, "label each training view with the teacher's own output (photo pool, no "
                                 "labelling pass)", distill_only=True)
    pool_labels: list[str] | None = option(None, "labels.json files with boxes for pool photos, added where the "
                                           "teacher misses faces: human labels, or another detector's "
                                           "(scripts/label_pool.py); the first file listing a photo wins",
                                           distill_only=True)
    pool_label_min_score: float = option(0.5, "a detector's pool labels below this score are not used", distill_only=True)
    source_weights: dict | None = option(None, "sampling multiplicity per pool source folder, e.g. "
                                         "masked_faces_rwmfd=4 scut_head_b=2 (replaces data.pool's table; unlisted "
                                         "sources get 1)", distill_only=True, metavar="SOURCE=W")
    mosaic_prob: float = option(0.25, "share of samples that are 2x2 mosaics of four photos", distill_only=True)
    zoom_out_prob: float = option(0.15, "share of views that place the whole photo on a larger canvas", distill_only=True)
    max_upscale: float = option(0.0, "no view magnifies its photo more than this; smaller photos sit in a "
                                "mean-colour window instead (0: no cap)", distill_only=True)
    mask_prob: float = option(0.0, "each labelled pool face gets a painted face mask with this probability",
                              distill_only=True)
    mask_style: str = option("plain", "painted masks: plain (surgical outline, five colours) or varied (cup-shaped, "
                             "any colour, striped, worn higher or lower)", choices=MASK_STYLES, distill_only=True)
    occlude_prob: float = option(0.0, "each labelled pool face is partly covered by texture from elsewhere in its "
                                 "photo, as a hand or a head in front covers faces in crowds", distill_only=True)
    negative_prob: float = option(0.0, "share of samples that are images without faces (noise, flat colour, masks "
                                  "without faces)", distill_only=True)
    min_negatives: int = option(0, "per image at least this many hard negatives in the task loss (0: RetinaFace's "
                                "7 per positive only, so an image without faces teaches nothing)")


@dataclass
class DistillationSettings:
    """The teacher and the knowledge-distillation loss (:class:`featherface.training.losses.DistillationLoss`)."""

    teacher: str | None = option(None, "teacher: FeatherFace checkpoint, official V1 .pth or RetinaFace-MobileNet0.25 "
                                 ".pth (loaded strictly and checked)", distill_only=True)
    teacher_backend: str = option("torch", "the teacher's forward pass in PyTorch or as a compiled OpenVINO graph "
                                  "(CPU; the openvino extra)", choices=TEACHER_BACKENDS, distill_only=True)
    pseudo_label_threshold: float = option(0.5, "teacher detections above this score become targets", distill_only=True)
    pseudo_label_long_side: int = option(640, "long side of the photos when the teacher labels them (no --labels, "
                                         "no --online-labels)", distill_only=True)
    check_image: str | None = option(None, "a photo the teacher must find faces in before training", distill_only=True)
    check_min_faces: int = option(20, "... at least this many at score >= 0.5", distill_only=True)
    temperature: float = option(4.0, "KD softening temperature T", distill_only=True)
    alpha: float = option(0.7, "weight of the KD term; the task loss gets 1 - alpha", distill_only=True)
    feature_weight: float = option(0.1, "weight of the feature-map MSE (the three post-BiFPN levels)", distill_only=True)
    label_corrected: bool = option(False, "leave the anchors of labelled faces the teacher missed (--pool-labels) out "
                                   "of the KD term, so the label, not the teacher's miss, is learnt there",
                                   distill_only=True)
    label_corrected_full: bool = option(False, "with --label-corrected: the task's classification term takes KD's "
                                        "share of the weight on those anchors (1 instead of 1 - alpha)",
                                        distill_only=True)


SECTIONS = (RunSettings, OptimiserSettings, DataSettings, DistillationSettings)


@dataclass
class TrainConfig(DistillationSettings, DataSettings, OptimiserSettings, RunSettings):
    """Every training option, flat. Field order follows :data:`SECTIONS` (dataclass inheritance
    puts the last base's fields first)."""

    def to_yaml(self, path: str | Path) -> None:
        from ..core.files import atomic_write_text

        atomic_write_text(Path(path), yaml.safe_dump(asdict(self), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        data = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        return cls(**data)

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'train' or 'distill', got {self.mode!r}")
        if not self.images:
            raise ValueError("images: the training image folder is required")
        if self.mode == "train" and not self.labels:
            raise ValueError("train mode needs labels (use distill with a teacher for unlabeled photos)")
        if self.mode == "distill" and not self.teacher:
            raise ValueError("distill mode needs a teacher")
        if self.label_corrected_full and not self.label_corrected:
            raise ValueError("label_corrected_full needs label_corrected")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be 'step', 'cosine' or 'constant', got {self.lr_schedule!r}")
        if self.teacher_backend not in TEACHER_BACKENDS:
            raise ValueError(f"teacher_backend must be 'torch' or 'openvino', got {self.teacher_backend!r}")
        if self.teacher_backend == "openvino" and not self.device.startswith("cpu"):
            raise ValueError(f"teacher_backend 'openvino' runs on the CPU; device is {self.device!r}")
        if self.source_weights is not None:
            # the CLI's --source-weights checks the same; a YAML --config arrives here unchecked
            bad = invalid_weights(self.source_weights)
            if bad:
                raise ValueError(f"source_weights must map source folders to numbers >= 0, got {bad}")
        if self.max_upscale < 0:
            raise ValueError(f"max_upscale must be >= 0 (0: no cap), got {self.max_upscale}")
        for name in ("mask_prob", "occlude_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.min_negatives < 0:
            raise ValueError(f"min_negatives must be >= 0, got {self.min_negatives}")
        if not 0.0 <= self.negative_prob < 1.0:
            raise ValueError(f"negative_prob must be in [0, 1), got {self.negative_prob}")
        if self.mask_style not in MASK_STYLES:
            raise ValueError(f"mask_style must be one of {MASK_STYLES}, got {self.mask_style!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.online_labels and (self.mode != "distill" or self.labels):
            raise ValueError("online_labels needs distill mode on a photo folder (no --labels)")
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch_size and epochs must be >= 1")


def lr_factor(epoch_float: float, cfg: TrainConfig, total_epochs: float | None = None) -> float:
    """Learning-rate multiplier at a (fractional) epoch: linear warm-up, then step decay at
    ``milestones``, with ``lr_schedule="cosine"`` a cosine from 1 to 0.01 reached at
    ``total_epochs`` (default ``cfg.epochs``), with ``"constant"`` 1."""
    if cfg.warmup_epochs > 0 and epoch_float < cfg.warmup_epochs:
        return max(epoch_float / cfg.warmup_epochs, 1e-3)
    if cfg.lr_schedule == "cosine":
        total = cfg.epochs if total_epochs is None else total_epochs
        span = max(total - cfg.warmup_epochs, 1e-9)
        t = min(max((epoch_float - cfg.warmup_epochs) / span, 0.0), 1.0)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.lr_schedule == "constant":
        return 1.0
    return cfg.gamma ** sum(epoch_float >= m for m in cfg.milestones)
