"""Training configuration: one dataclass, written as YAML next to the checkpoints."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..data.pool import invalid_weights
from ..data.transforms import CUTOUT_STYLES, MASK_STYLES, OCCLUDER_STYLES


# the accepted values of two string options, shared with the command line's choices
LR_SCHEDULES = ("step", "cosine", "constant")
TEACHER_BACKENDS = ("torch", "openvino")


@dataclass
class TrainConfig:
    # --- what to train
    arch: str = "nano"  # "nano", "v1" or "retinaface"
    mode: str = "train"  # "train" (labels) or "distill" (teacher + labels or pseudo-labels)
    images: str = ""  # image root; label paths (or the photo folder) are relative to it
    labels: str | None = None  # label.txt / wider_face_*_bbx_gt.txt; None -> pseudo-labels (distill)
    out_dir: str = "runs/exp"
    # backbone to start from: ImageNet MobileNetV1-0.25 weights, or any detector checkpoint here
    # (official V1 .pth, our .pt): its MobileNetV1-0.25 is copied (V1's was trained on WIDER FACE)
    init_backbone: str | None = None
    init_weights: str | None = None  # FeatherFace checkpoint to start from (fine-tuning)
    # --- teacher (distill mode)
    teacher: str | None = None  # checkpoint or official V1 .pth, loaded strictly
    pseudo_label_threshold: float = 0.5  # teacher detections above this become targets
    # "openvino": the teacher's forward pass (no gradients) runs as a compiled OpenVINO graph on
    # the CPU (exported once per run, compiled per batch shape); "torch": in PyTorch
    teacher_backend: str = "torch"
    # background anchors the teacher scores as a face with p >= this are not mined as negatives
    # by the task loss (0: off); see losses.DistillationLoss
    ignore_below: float = 0.0
    # KD leaves out the positive anchors of labelled boxes the teacher missed (pool_labels), so the
    # teacher's miss does not overrule the label there; see losses.DistillationLoss
    label_corrected_kd: bool = False
    # with label_corrected_kd: on the anchors KD leaves out, the task's classification term takes
    # KD's share of the weight too (1 instead of 1 - alpha); see losses.DistillationLoss
    label_corrected_full: bool = False
    # where a pool label and a teacher detection are the same face, the label's box (mapped to the
    # teacher's convention) is the task target instead of the teacher's; see merge_online_targets
    label_boxes: bool = False
    # > 1: the teacher also runs on each batch magnified this many times, and ITS detections are
    # the online targets (plus the larger faces only the view-scale pass finds); KD still compares
    # with the view-scale pass. See training.labels.merge_online_targets
    label_upscale: float = 1.0
    # weight of the teacher's box regressions on the anchors it scores >= 0.1 (0: off); see
    # losses.DistillationLoss
    box_kd_weight: float = 0.0
    # weight of the feature MSE on the cells around each target face (0: off); see
    # losses.DistillationLoss and losses.imitation_masks
    feature_focus_weight: float = 0.0
    # ... through a trainable 1x1 convolution per level on the student's side (needs the weight)
    feature_adapter: bool = False
    pseudo_label_long_side: int = 640  # resize rule used when labelling photos with the teacher
    # Online labels (distill without --labels): the teacher's output on each training crop, decoded,
    # is the task target; boxes from pool_labels (our labels.json files: human labels, or another
    # detector's from scripts/label_pool.py; the first file listing a photo wins) are added where
    # the teacher misses a face. No labelling pass before training (see data/pool.py).
    online_labels: bool = False
    pool_labels: list[str] | str | None = None
    pool_label_min_score: float = 0.5  # a detector's pool labels below this score are not used
    mosaic_prob: float = 0.25  # share of samples that are 2x2 mosaics of four photos
    zoom_out_prob: float = 0.15  # share of views that place the whole photo on a larger canvas
    max_upscale: float = 0.0  # no training view magnifies its photo more than this (0: no cap)
    mask_prob: float = 0.0  # each labelled pool face gets a painted face mask with this probability
    mask_style: str = "plain"  # data.transforms.MASK_STYLES: the plain masks or varied ones
    occlude_prob: float = 0.0  # each labelled pool face is partly covered (data.transforms.occlude_faces)
    occlude_style: str = "photo"  # data.transforms.OCCLUDER_STYLES: photo texture, skin-toned limbs, real cut-outs
    occluder_bank: str = ""  # .npz of hand/arm cut-outs (scripts/build_occluder_bank.py) for styles cutout, mixed
    negative_prob: float = 0.0  # share of samples that are images without faces (data.pool.no_face_image)
    # per image at least this many hard negatives in the task loss (0: RetinaFace's 7 per positive
    # only, so an image without faces teaches nothing); see losses.MultiBoxLoss
    min_negatives: int = 0
    source_weights: dict | None = None  # per-source sampling multiplicity (None: data.pool defaults)
    image_weights: str = ""  # JSON of per-photo sampling factors (scripts/mine_hard_photos.py); "" none
    check_image: str | None = None  # real photo the teacher must find faces in before training
    check_min_faces: int = 20  # ... at least this many at score >= 0.5
    temperature: float = 4.0  # KD softening temperature T
    alpha: float = 0.7  # weight of the KD term; the task loss gets 1 - alpha
    feature_weight: float = 0.1  # beta: weight of the feature-map MSE
    # --- optimisation
    epochs: int = 400
    batch_size: int = 32  # per process; the global batch is batch_size * world size
    lr_per_image: float = 1e-3 / 32  # learning rate = lr_per_image * global batch (1e-3 at 32)
    weight_decay: float = 5e-4
    milestones: list[int] = field(default_factory=lambda: [250, 350])  # epochs where lr *= gamma
    gamma: float = 0.1
    warmup_epochs: float = 5.0  # linear warm-up from 0 (fraction of epochs allowed)
    # "step" (milestones), "cosine" (to 1 % at the last step) or "constant" (after the warm-up; with
    # ema_decay, a run that can be continued later with a larger --max-steps: nothing in
    # the schedule depends on where the run ends)
    lr_schedule: str = "step"
    # exponential moving average of the weights (and BatchNorm statistics), updated after every
    # optimizer step: w_ema <- d * w_ema + (1 - d) * w. 0 disables. With it, <out>/ema.pt is written
    # at every checkpoint and model.pt holds the EMA weights.
    ema_decay: float = 0.0
    # while step < this, the student's backbone is frozen (eval-mode BN) and, when it equals the
    # teacher's (init_backbone = the teacher), one backbone pass serves both networks
    freeze_backbone_steps: int = 0
    # NHWC tensors for student, teacher and batches: measured on this 2-core CPU at 480 px, batch 16,
    # teacher forward about 0.6x and student forward+backward about 0.8x the default layout's time
    channels_last: bool = True
    grad_clip: float | None = 10.0  # max global grad norm; None disables
    image_size: int = 640
    epoch_repeats: int = 1  # passes over the data per "epoch" (small photo sets: fewer loader restarts)
    # --- bookkeeping
    seed: int = 0
    workers: int = 2
    device: str = "cpu"
    save_every_steps: int = 0  # also checkpoint every N optimizer steps (0: only at epoch ends)
    max_steps: int = 0  # stop after this many optimizer steps in total (0: no limit); for smoke runs
    val_images: str | None = None  # held-out photos: agreement AP with the teacher, every eval_every epochs
    eval_every: int = 0

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
        from ..models import ARCHITECTURES

        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {self.arch!r}")
        if self.mode not in ("train", "distill"):
            raise ValueError(f"mode must be 'train' or 'distill', got {self.mode!r}")
        if not self.images:
            raise ValueError("images: the training image folder is required")
        if self.mode == "train" and not self.labels:
            raise ValueError("train mode needs labels (use distill with a teacher for unlabeled photos)")
        if self.mode == "distill" and not self.teacher:
            raise ValueError("distill mode needs a teacher")
        if self.label_corrected_full and not self.label_corrected_kd:
            raise ValueError("label_corrected_full needs label_corrected_kd")
        if not 1.0 <= self.label_upscale <= 4.0:
            raise ValueError(f"label_upscale must be in [1, 4], got {self.label_upscale}")
        if self.label_upscale > 1 and not (self.mode == "distill" and self.online_labels):
            raise ValueError("label_upscale needs distill mode with online_labels")
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
        if self.image_weights and not Path(self.image_weights).is_file():
            raise ValueError(f"image_weights: no file {self.image_weights!r}")
        if self.max_upscale < 0:
            raise ValueError(f"max_upscale must be >= 0 (0: no cap), got {self.max_upscale}")
        if not 0.0 <= self.mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in [0, 1], got {self.mask_prob}")
        if not 0.0 <= self.occlude_prob <= 1.0:
            raise ValueError(f"occlude_prob must be in [0, 1], got {self.occlude_prob}")
        if self.occlude_style not in OCCLUDER_STYLES:
            raise ValueError(f"occlude_style must be one of {OCCLUDER_STYLES}, got {self.occlude_style!r}")
        if self.occlude_prob > 0 and self.occlude_style in CUTOUT_STYLES and not self.occluder_bank:
            raise ValueError(f"occlude_style {self.occlude_style!r} needs occluder_bank (a .npz of cut-outs)")
        if self.feature_focus_weight < 0:
            raise ValueError(f"feature_focus_weight must be >= 0, got {self.feature_focus_weight}")
        if self.feature_adapter and self.feature_focus_weight <= 0:
            raise ValueError("feature_adapter needs feature_focus_weight > 0")
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
    import math

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
