"""Training engine: ``train(cfg)`` for both labelled training and teacher-student distillation,
single- or multi-process (``torchrun``: DistributedDataParallel, gloo on CPU, nccl on GPU).

Resumability: the data order of epoch ``e`` is a permutation drawn from ``(seed, e)`` and the
augmentation of sample ``i`` from ``(seed, e, i)``, so a run resumed from ``last.pt`` (model,
optimizer, scheduler, epoch, step-within-epoch, RNG states) replays exactly the batches an
uninterrupted run would have seen, and ends with the same number of optimizer steps.
Checkpoints are written atomically (temporary file, then rename): ``kill -9`` at any moment
leaves the previous checkpoint intact.
"""
from __future__ import annotations

import csv
import logging
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from ..models.anchors import priors
from ..models.checkpoint import atomic_save, load_state_strict, make_checkpoint, read_checkpoint, save_checkpoint
from ..data.dataset import PseudoLabelDataset, WiderFaceDataset, collate, pseudo_label
from ..core.files import list_images
from ..core.detector import FaceDetector
from ..models.loading import load_any
from ..export.torch_runner import TorchRunner
from .losses import DistillationLoss, MultiBoxLoss
from ..models import build_model
from ..models.featherface import backbone_of
from .config import TrainConfig, lr_factor
from .labels import merge_online_targets

log = logging.getLogger(__name__)

LOG_FIELDS = ["step", "epoch", "lr", "total", "task", "box", "cls", "landmark", "kd", "feature", "faces",
              "labels_added", "images_per_s", "time_s", "added_cls"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops and ``last.pt`` keeps the last good state."""


class TeacherCheckError(ValueError):
    """The teacher failed its sanity check; distillation refuses to start (a bad input, reported
    by the CLI as a one-line error)."""


# ------------------------------------------------------------------ distributed helpers

def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """Join the process group when launched by torchrun. Returns ``(rank, world, device)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        if dev.type == "cpu":
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return rank, world, dev


def replica_difference(model: torch.nn.Module, world: int) -> float:
    """Largest absolute difference between any rank's parameters and rank 0's (0.0 when the
    DDP replicas are identical, as they must be). Collective: every rank must call it."""
    if world == 1:
        return 0.0
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def epoch_batches(n: int, batch: int, seed: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    """This rank's batches of epoch ``epoch``: one permutation from (seed, epoch), dealt to the
    ranks, cut into full batches (every rank gets the same number of steps)."""
    perm = np.random.default_rng([seed, epoch, 7]).permutation(n)
    steps = n // (batch * world)
    if steps == 0:  # fewer images than one global batch: sample with replacement to fill it
        perm = np.resize(perm, batch * world)
        steps = 1
    mine = perm[: steps * batch * world].reshape(steps, world, batch)[:, rank]
    return mine.tolist()


# ------------------------------------------------------------------ setup pieces

def check_teacher(teacher: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> int:
    """Sanity-check the teacher before any training; raise :class:`TeacherCheckError` unless it

    * finds at least ``check_min_faces`` faces at score >= 0.5 in ``check_image`` (without a
      check photo: at least one face in the first training images), and
    * finds at most 2 "faces" in each of two face-free images (flat grey, and fixed-seed noise):
      an untrained or wrongly loaded network fires everywhere, so counting faces on a photo
      alone would let it through (the reference pipeline's non-strict load did exactly that).
    """
    from ..core.files import read_image

    det = FaceDetector(TorchRunner(teacher, device), score_threshold=0.5, refine_landmarks=False)  # boxes checked
    blank = np.full((320, 320, 3), 127, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (320, 320, 3), dtype=np.uint8)
    false = [len(det.detect(img)) for img in (blank, noise)]
    if max(false) > 2:
        raise TeacherCheckError(f"teacher {cfg.teacher} finds {false[0]} and {false[1]} 'faces' at score >= 0.5 in a "
                                "blank and a noise image (a trained detector finds none): its weights look untrained or "
                                "mismatched. Refusing to distil from a broken teacher.")
    if cfg.check_image:
        n = len(det.detect(read_image(Path(cfg.check_image))))
        where, need = cfg.check_image, cfg.check_min_faces
    else:  # no check photo: the teacher must find faces in the first training photos
        files = list_images(cfg.images)[:8]
        n = 0
        for f in files:
            try:
                n += len(det.detect(read_image(Path(cfg.images) / f)))
            except ValueError as exc:  # an unreadable photo is reported, not fatal
                log.warning("teacher check: %s", exc)
        where, need = f"the first {len(files)} images of {cfg.images}", 1
    if n < need:
        raise TeacherCheckError(f"teacher {cfg.teacher} found {n} face(s) at score >= 0.5 in {where}; "
                                f"at least {need} required. Refusing to distil from a broken teacher.")
    log.info("teacher check passed: %d faces in %s, none in blank/noise images", n, where)
    return n


def build_dataset(cfg: TrainConfig, teacher, device, rank: int, world: int):
    if cfg.online_labels:
        from ..data.pool import PoolDataset, read_pool

        entries, human = read_pool(cfg.images, cfg.pool_labels, cfg.source_weights, cfg.pool_label_min_score)
        return PoolDataset(cfg.images, entries, human, cfg.image_size, cfg.seed, cfg.mosaic_prob, cfg.zoom_out_prob,
                           cfg.max_upscale, cfg.mask_prob, cfg.mask_style, cfg.negative_prob, cfg.occlude_prob)
    if cfg.labels:
        return WiderFaceDataset(cfg.images, cfg.labels, cfg.image_size, cfg.seed, repeats=cfg.epoch_repeats)
    cache = Path(cfg.out) / "pseudo_labels.json"
    files = list_images(cfg.images)
    # the teacher's own outputs are the labels: its one look (the second look is a detector-side step)
    det = FaceDetector(TorchRunner(teacher, device), score_threshold=cfg.pseudo_label_threshold,
                       long_side=cfg.pseudo_label_long_side, refine_landmarks=False)
    if rank == 0:
        pseudo_label(det, cfg.images, files, cache, teacher_id=str(cfg.teacher))
    barrier(world)
    records = pseudo_label(det, cfg.images, files, cache, teacher_id=str(cfg.teacher))
    log.info("pseudo-labels: %d faces in %d of %d photos (teacher score >= %.2f)",
             sum(len(r) for r in records), sum(1 for r in records if len(r)), len(records), cfg.pseudo_label_threshold)
    return PseudoLabelDataset(cfg.images, records, cfg.image_size, cfg.seed, repeats=cfg.epoch_repeats)


def init_student(cfg: TrainConfig) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch)
    if cfg.init_weights:
        load_state_strict(model, read_checkpoint(cfg.init_weights)["state_dict"], str(cfg.init_weights))
    elif cfg.init_backbone:
        copy_backbone(model, cfg.init_backbone)
    return model


def copy_backbone(model: torch.nn.Module, path: str) -> str:
    """Initialise ``model``'s MobileNetV1-0.25 from ``path``: a detector checkpoint (ours, or an
    official V1 / RetinaFace state_dict), whose backbone is copied, or the ImageNet weights.
    Returns which kind it was. Strict either way: a file that is neither raises ValueError."""
    from ..models.checkpoint import CheckpointError
    from ..models.backbone import load_imagenet_weights

    try:
        source, _ = load_any(Path(path))
    except (CheckpointError, ValueError):
        source = None
    if source is not None:
        backbone_of(model).load_state_dict(backbone_of(source).state_dict(), strict=True)
        log.info("backbone copied from the %s detector in %s", getattr(source, "name", "?"), path)
        return "detector"
    try:
        load_imagenet_weights(backbone_of(model), path)
    except Exception as exc:
        raise ValueError(f"--init-backbone {path}: neither a detector checkpoint nor MobileNetV1-0.25 ImageNet "
                         f"weights ({str(exc).splitlines()[0][:200]})") from None
    return "imagenet"


def shares_backbone(student: torch.nn.Module, teacher: torch.nn.Module | None) -> bool:
    """True when the two backbones hold identical weights (so one pass can serve both)."""
    if teacher is None:
        return False
    s, t = backbone_of(student).state_dict(), backbone_of(teacher).state_dict()
    return s.keys() == t.keys() and all(torch.equal(s[k].cpu(), t[k].cpu()) for k in s)


def set_backbone_frozen(model: torch.nn.Module, frozen: bool) -> None:
    """Freeze (no gradients, BatchNorm statistics fixed) or unfreeze the model's backbone."""
    bb = backbone_of(model)
    bb.requires_grad_(not frozen)
    bb.train(not frozen and model.training)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].tolist(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", np.asarray(state["numpy"], np.uint32), 624, 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _prune_log(path: Path, max_step: int) -> None:
    """On resume, drop log rows of steps that will be replayed."""
    if not path.is_file():
        return
    import io

    from ..core.files import atomic_write_text

    with open(path) as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit() and int(r["step"]) <= max_step]
    buf = io.StringIO()
    w = csv.DictWriter(buf, LOG_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())  # a kill during the rewrite keeps the old log


# ------------------------------------------------------------------ the loop

@dataclass
class RunState:
    """Everything one training run carries from step to step."""

    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    out: Path
    model: torch.nn.Module  # the unwrapped student
    net: torch.nn.Module  # what the forward pass calls (DDP-wrapped with several processes)
    teacher: torch.nn.Module | None
    dataset: object
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: torch.nn.Module
    anchors: torch.Tensor
    start_epoch: int = 0
    skip: int = 0  # steps of start_epoch already done (resume)
    step: int = 0
    share_backbone: bool = False
    started: float = 0.0
    log_path: Path | None = None
    last_path: Path | None = None
    ema: AveragedModel | None = None  # cfg.ema_decay > 0: the averaged student (its .module)
    # cfg.teacher_backend == "openvino": batch (N, 3, H, W) -> loc, conf, landms, feat0..2 tensors
    teacher_graph: object | None = None
    # read once when the run starts: the code that is running, even if the work tree moves on
    revision: str | None = None


def git_revision() -> str | None:
    """The source revision training ran from (``git describe --always --dirty``), if known."""
    import subprocess

    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def setup(cfg: TrainConfig, resume: bool = False) -> RunState:
    """Teacher (checked), data, student, optimizer and schedule; restores ``last.pt`` on resume."""
    cfg.validate()
    rank, world, device = init_distributed(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    teacher = None
    if cfg.mode == "distill":
        teacher, _ = load_any(Path(cfg.teacher), str(device))  # strict: official or our format
        teacher.eval().requires_grad_(False)
        check_teacher(teacher, cfg, device)
        if cfg.channels_last:
            teacher.to(memory_format=torch.channels_last)
    dataset = build_dataset(cfg, teacher, device, rank, world)
    model = init_student(cfg).to(device)
    if cfg.channels_last:  # before the optimizer is built, so its state has the same layout
        model.to(memory_format=torch.channels_last)
    task = MultiBoxLoss(min_negatives=cfg.min_negatives)
    criterion = task if teacher is None else DistillationLoss(
        cfg.temperature, cfg.alpha, cfg.feature_weight, task=task, label_corrected=cfg.label_corrected,
        label_corrected_full=cfg.label_corrected_full).to(device)
    global_batch = cfg.batch_size * world
    steps_per_epoch = len(epoch_batches(len(dataset), cfg.batch_size, cfg.seed, 0, rank, world))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr_per_image * global_batch,
                                  weight_decay=cfg.weight_decay)
    total_epochs = min(cfg.epochs, cfg.max_steps / steps_per_epoch) if cfg.max_steps else cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s / steps_per_epoch, cfg, total_epochs))
    st = RunState(cfg, rank, world, device, out, model, model, teacher, dataset, optimizer, scheduler, criterion,
                  priors(cfg.image_size, cfg.image_size, device), log_path=out / "log.csv", last_path=out / "last.pt",
                  revision=git_revision())
    ck = None
    if resume and st.last_path.is_file():
        ck = read_checkpoint(st.last_path)
        load_state_strict(model, ck["state_dict"], str(st.last_path))
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        st.start_epoch, st.skip, st.step = ck["epoch"], ck["step_in_epoch"], ck["step"]
        _set_rng_state(ck["rng"])
        log.info("resumed from %s at epoch %d, step %d (%d steps into the epoch)", st.last_path, st.start_epoch, st.step, st.skip)
    elif resume:
        log.warning("--resume: no %s yet, starting from scratch", st.last_path)
    if cfg.ema_decay:
        # built after any resume: a copy of the weights training continues from (its first update
        # copies them again); BatchNorm running statistics are averaged too, so the EMA model is
        # usable as it is. An EMA switched on at a resume starts from the resumed weights.
        st.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
        if ck is not None and "ema" in ck:
            st.ema.load_state_dict(ck["ema"])
    if rank == 0:
        cfg.to_yaml(out / "config.yaml")
        _prune_log(st.log_path, st.step)
    # Frozen-backbone phase: when the student's backbone equals the teacher's, one backbone pass
    # feeds both (about a third less compute per step). Checked once, before any update.
    st.share_backbone = cfg.freeze_backbone_steps > st.step and shares_backbone(model, teacher) and world == 1
    if cfg.freeze_backbone_steps > st.step:
        log.info("backbone frozen for steps %d..%d%s", st.step, cfg.freeze_backbone_steps,
                 " (one backbone pass shared with the teacher)" if st.share_backbone else "")
    if teacher is not None and cfg.teacher_backend == "openvino":
        st.teacher_graph = openvino_teacher(teacher, out, cfg.image_size)
    if world > 1:
        st.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.workers > 0:
        # Loader processes already run in parallel. OpenCV's own thread pool must be off BEFORE
        # they are forked: re-configuring it inside a forked worker deadlocks.
        import cv2

        cv2.setNumThreads(0)
    return st


def save_state(st: RunState, epoch: int, step_in_epoch: int) -> None:
    """Atomic training checkpoint (rank 0 only): model, optimizer, schedule, position, RNG."""
    if st.rank != 0:
        return
    meta = {"trained_steps": st.step, "config": asdict(st.cfg), "world_size": st.world, "git_revision": st.revision}
    extra = {"ema": st.ema.state_dict()} if st.ema is not None else {}
    atomic_save(make_checkpoint(st.model, st.cfg.arch, meta, optimizer=st.optimizer.state_dict(),
                                scheduler=st.scheduler.state_dict(), epoch=epoch, step_in_epoch=step_in_epoch,
                                step=st.step, rng=_rng_state(), **extra), st.last_path)
    if st.ema is not None:  # the averaged weights as an ordinary model checkpoint, ready to evaluate
        save_checkpoint(st.ema.module, st.cfg.arch, st.out / "ema.pt", {**meta, "ema_decay": st.cfg.ema_decay})


def openvino_teacher(teacher: torch.nn.Module, out: Path, size: int):
    """The teacher as an OpenVINO graph (outputs and feature maps; :func:`featherface.export.graph.
    export_onnx` with ``features=True``), written to ``out/teacher.onnx``, compiled once per batch shape.
    Checked here against the PyTorch teacher on one random batch before training starts."""
    from ..export.graph import export_onnx
    from ..core.runners import OpenVinoRunner

    path = export_onnx(teacher, out / "teacher.onnx", getattr(teacher, "name", "?"), size, size, features=True)
    graph = OpenVinoRunner(path, num_threads=torch.get_num_threads())
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 50
    with torch.no_grad():
        (loc, conf, landmark_deltas), feats = teacher(x.contiguous(), return_features=True)
    for name, ref, got in zip(("loc", "conf", "landms", "feat0", "feat1", "feat2"),
                              (loc, conf, landmark_deltas, *feats), map(torch.from_numpy, graph.all_outputs(x.numpy()))):
        err = float((ref.float() - got).abs().max())
        if err > 1e-3:
            raise RuntimeError(f"the OpenVINO teacher's {name} differs from PyTorch's by {err:.3g}; use teacher_backend='torch'")
    log.info("teacher runs on OpenVINO (%s)", path)
    return graph


@torch.no_grad()
def teacher_forward(st: RunState, images: torch.Tensor) -> list[torch.Tensor]:
    """The teacher's ``[loc, conf, landmark_deltas, feat0, feat1, feat2]`` for a batch (no gradients;
    the OpenVINO graph when there is one)."""
    if st.teacher_graph is not None:
        return [torch.from_numpy(o) for o in st.teacher_graph.all_outputs(images.numpy())]
    (loc, conf, landmark_deltas), feats = st.teacher(images, return_features=True)
    return [loc, conf, landmark_deltas, *feats]


def training_step(st: RunState, images: torch.Tensor, targets: list[dict]) -> dict[str, torch.Tensor]:
    """One optimizer step; returns the loss terms. Raises :class:`NonFiniteLossError` BEFORE
    touching the weights when the loss is NaN or infinite."""
    cfg = st.cfg
    images = images.to(st.device, non_blocking=True)
    if cfg.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    frozen = st.step < cfg.freeze_backbone_steps
    if not frozen and cfg.freeze_backbone_steps and st.step == cfg.freeze_backbone_steps:
        set_backbone_frozen(st.model, False)
        st.share_backbone = False
        log.info("step %d: backbone unfrozen", st.step)
    if st.teacher is not None:
        with torch.no_grad():
            if not (st.share_backbone and frozen):
                t_all = teacher_forward(st, images)
                t_out, t_feats = tuple(t_all[:3]), list(t_all[3:])
            else:
                t_base = backbone_of(st.teacher)(images)
                t_out, t_feats = st.teacher.from_backbone(t_base)
        if st.share_backbone and frozen:
            s_out, s_feats = st.model.from_backbone(t_base)
        else:
            s_out, s_feats = st.net(images, return_features=True)
        if cfg.online_labels:
            targets[:] = merge_online_targets(targets, t_out, tuple(images.shape[2:]), cfg.pseudo_label_threshold)
        terms = st.criterion(s_out, t_out, targets, st.anchors, s_feats, t_feats)
    else:
        terms = st.criterion(st.net(images), targets, st.anchors)
    if not torch.isfinite(terms["total"]):
        raise NonFiniteLossError(
            f"step {st.step + 1}: the loss is {float(terms['total'].detach())} "
            f"({', '.join(f'{k}={float(v.detach()):.4g}' for k, v in terms.items())}); stopping. "
            f"{st.last_path} keeps the last good state: resume with a lower learning rate.")
    st.optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(st.model.parameters(), cfg.grad_clip)
    st.optimizer.step()
    st.scheduler.step()
    if st.ema is not None:
        st.ema.update_parameters(st.model)
    st.step += 1
    return terms


def train_one_epoch(st: RunState, epoch: int, writer=None, progress: bool = True) -> bool:
    """Run the remaining batches of ``epoch``; returns True when ``max_steps`` was reached."""
    from tqdm import tqdm

    cfg = st.cfg
    st.dataset.set_epoch(epoch)
    batches = epoch_batches(len(st.dataset), cfg.batch_size, cfg.seed, epoch, st.rank, st.world)
    first = st.skip if epoch == st.start_epoch else 0
    loader = DataLoader(st.dataset, batch_sampler=batches[first:], collate_fn=collate, num_workers=cfg.workers,
                        pin_memory=st.device.type == "cuda")
    st.net.train()
    if st.step < cfg.freeze_backbone_steps:
        set_backbone_frozen(st.model, True)
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress or st.rank != 0, leave=False)
    tick = time.perf_counter()
    for i, (images, targets) in enumerate(bar, start=first):
        terms = training_step(st, images, targets)
        if writer:
            row = {k: float(v.detach()) for k, v in terms.items() if k in LOG_FIELDS}
            if cfg.online_labels:
                row["faces"] = sum(len(t["boxes"]) for t in targets)
                # labelled boxes (--pool-labels) the teacher missed, added to the task targets
                row["labels_added"] = sum(t.get("n_added", 0) for t in targets)
            now = time.perf_counter()
            row.update(step=st.step, epoch=epoch + (i + 1) / len(batches), lr=st.optimizer.param_groups[0]["lr"],
                       images_per_s=cfg.batch_size * st.world / (now - tick), time_s=now - st.started)
            writer(row)
            bar.set_postfix(loss=f"{row['total']:.3f}")
        tick = time.perf_counter()  # images/s counts data loading too
        done = bool(cfg.max_steps) and st.step >= cfg.max_steps
        if done or (cfg.save_every_steps and st.step % cfg.save_every_steps == 0):
            finished_epoch = i + 1 == len(batches)
            save_state(st, epoch + 1 if finished_epoch else epoch, 0 if finished_epoch else i + 1)
        if done:
            return True
    return False


def fit(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> torch.nn.Module:
    """Train (or distil) according to ``cfg``; returns the trained (unwrapped) model. Writes
    ``last.pt`` (atomically), ``log.csv`` (one flushed row per step), ``eval.csv`` and, at the
    end, ``model.pt``. With ``cfg.ema_decay`` the returned model and ``model.pt`` are the
    weights' moving average (``ema.pt`` is written next to every ``last.pt``)."""
    st = setup(cfg, resume)
    log_fh = open(st.log_path, "a", newline="") if st.rank == 0 else None
    writer = None
    if log_fh:
        # A resumed run keeps its log's columns (a log written before a column existed stays
        # readable); a new log gets all of LOG_FIELDS.
        fields = LOG_FIELDS
        if log_fh.tell() > 0:
            with open(st.log_path, newline="") as fh:
                fields = next(csv.reader(fh), None) or LOG_FIELDS
        w = csv.DictWriter(log_fh, fields)
        if log_fh.tell() == 0:
            w.writeheader()

        def writer(row: dict) -> None:
            w.writerow({k: row.get(k, "") for k in fields})
            log_fh.flush()  # a killed run keeps every finished step's row
    st.started = time.perf_counter()
    try:
        for epoch in range(st.start_epoch, cfg.epochs):
            if train_one_epoch(st, epoch, writer, progress):
                log.info("max_steps=%d reached", cfg.max_steps)
                break
            save_state(st, epoch + 1, 0)
            if st.rank == 0 and cfg.val_images and cfg.eval_every and (epoch + 1) % cfg.eval_every == 0 and st.teacher is not None:
                ap = agreement_with_teacher(st.model, st.teacher, cfg.val_images, st.device)
                with open(st.out / "eval.csv", "a") as fh:  # append-only, one line per evaluation
                    fh.write(f"{epoch + 1},{st.step},{ap:.5f}\n")
                log.info("epoch %d: agreement AP with the teacher on %s = %.4f", epoch + 1, cfg.val_images, ap)
        diff = replica_difference(st.model, st.world)
        if diff > 0:
            log.warning("DDP replicas differ after training: max |diff| = %.3g", diff)
        if st.rank == 0:
            meta = {"trained_steps": st.step, "config": asdict(cfg), "world_size": st.world,
                    "replica_max_abs_diff": diff, "git_revision": st.revision}
            if st.ema is not None:
                meta["ema_decay"] = cfg.ema_decay
            save_checkpoint(st.model if st.ema is None else st.ema.module, cfg.arch, st.out / "model.pt", meta=meta)
        return st.model if st.ema is None else st.ema.module
    finally:
        if log_fh:
            log_fh.close()
        barrier(st.world)


train = fit  # the name earlier releases exported


def agreement_with_teacher(student, teacher, folder: str, device, student_threshold: float = 0.05) -> float:
    """AP@0.5 of the student's detections against the teacher's (score >= 0.5) on ``folder``."""
    from ..evaluation.agreement import agreement_ap
    from ..core.files import read_images

    was = student.training
    s_det = FaceDetector(TorchRunner(student, device), score_threshold=student_threshold, refine_landmarks=False)
    t_det = FaceDetector(TorchRunner(teacher, device), score_threshold=0.5, refine_landmarks=False)  # boxes compared
    imgs = [img for _, img in read_images(folder)]
    ap = agreement_ap([s_det.detect_arrays(i) for i in imgs], [t_det.detect_arrays(i) for i in imgs])
    student.train(was)
    return ap
