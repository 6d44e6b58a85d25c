"""Fine-tune Nano on better landmark targets while holding its detection to the starting weights'
outputs: its context modules and heads (``--train context``: SSH and heads, 85,152 of its 344,254
parameters) or every layer (``--train all``).

Targets: another detector's five points (SCRFD-2.5G's, from ``scripts/label_pool.py``) on the
training pool, never on the landmark dev set (``featherface/data/landmark_dev.txt``) nor on the
photos of ``--exclude``. With ``--train context`` the backbone, BiFPN and attention stay frozen
(their features are computed without gradients); BatchNorm statistics stay the starting ones
everywhere. Each sample is, with probability ``--look-share``, a second look's input around one
labelled face (``featherface.core.refine``: 1.5 box sides at 144 px, the box jittered as the first
look's would be), otherwise a whole photo at long side 640; mirrored half the time. The loss is

* landmarks: smooth L1 (``--beta`` in encoded units; 1.0 is Huber with delta 1, small values are
  near L1) on the encoded points ``(p - a_c) / (0.1 a_wh)`` of the anchors inference uses for each
  labelled face (decoded box IoU >= 0.4 with it, starting probability >= 0.1), weighted by that
  probability, as box voting weighs them;
* detection held: ``--hold`` x the mean squared difference to the starting network's box
  regressions and class logits on every anchor whose starting face probability is >= 0.01, plus
  the class logits of a random 5 % of the rest, so boxes and scores stay where they were.

Resumable: ``OUT.state.pt`` holds the weights, the optimiser and the step; a rerun continues. The
checkpoint's ``meta["landmark_finetune"]`` lists every fine-tune the weights went through. Nano 1.3
(``featherface/weights/README.md``): five runs, each starting from the previous one's output
(``--start``; the first from Nano 1.0.1)::

    python scripts/finetune_landmarks.py POOL POOL/labels/scrfd_2.5g.json OUT.pt --train all \
        --look-share 0.85 --min-side 48 --beta 0.05 --lr 3e-4 --steps 4000 --exclude scripts/landmark_choice.txt
    # then four more with --look-share 0.9: --lr 1.5e-4 --steps 5000; --lr 1e-4 --steps 3500 (1.2);
    # --lr 1e-4 --steps 4000; --lr 1e-4 --steps 3500 (1.3)
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from featherface.core.detector import preprocess
from featherface.core.files import read_image
from featherface.core.geometry import iou_matrix
from featherface.core.priors import decode_boxes, pixel_priors
from featherface.core.refine import cut_square, face_squares
from featherface.core.settings import LOOK
from featherface.core.weights import resolve_weights
from featherface.data.pool import held_out_photos, read_photo_list
from featherface.data.transforms import Sample, mirror
from featherface.models.checkpoint import atomic_save, load_model, make_checkpoint
from fit_landmark_head import targets  # scripts/: the same labelled points

log = logging.getLogger("finetune_landmarks")


def network_input(image: np.ndarray, boxes: np.ndarray, points: np.ndarray, flip: bool, long_side: int):
    """``(CHW input, boxes, points)``: ``image`` (mirrored with ``flip``, labels moving with it,
    ``featherface.data.transforms.mirror``) resized to ``long_side``, the labels in its pixels."""
    if flip:
        s = mirror(Sample(image, boxes, points, np.ones(len(boxes), bool)))
        image, boxes, points = s.image, s.boxes, s.landmarks
    x, (sx, sy) = preprocess(image, long_side=long_side)
    return x, boxes / np.array([sx, sy, sx, sy], np.float32), points / np.array([sx, sy], np.float32)


def sample(pool: Path, name: str, item: dict, flip: bool, min_score: float):
    boxes, points = targets(item, min_score)
    if not len(boxes):
        return None
    return network_input(read_image(pool / name), boxes, points, flip, 640)


def look_sample(pool: Path, name: str, item: dict, rng: np.random.Generator, min_score: float,
                min_side: float):
    """A second look's input (``featherface.core.refine``) around one labelled face of at least
    ``min_side`` px: the square of ``LOOK.context`` box sides, mirrored half the time, at long side
    ``LOOK.context * LOOK.face_px``. The first look's box, which places the square at inference,
    varies around the label's: side x U(0.85, 1.15), centre moved by up to 5 % of the side."""
    boxes, points = targets(item, min_score)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    ok = np.flatnonzero(sides >= min_side)
    if not len(ok):
        return None
    i = int(rng.choice(ok))
    side = sides[i] * rng.uniform(0.85, 1.15)
    centre = (boxes[i, :2] + boxes[i, 2:]) / 2 + rng.uniform(-0.05, 0.05, 2) * sides[i]
    (x0, y0, sq), = face_squares(np.r_[centre - side / 2, centre + side / 2][None], LOOK.context)
    flip = bool(rng.random() < 0.5)
    crop = cut_square(read_image(pool / name), int(x0), int(y0), int(sq))
    return network_input(crop, boxes - np.array([x0, y0, x0, y0], np.float32), points - np.array([x0, y0], np.float32),
                         flip, round(LOOK.context * LOOK.face_px))


def context_and_heads(net, feats: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``(loc, conf, landmark_deltas)`` of one image from Nano's post-BiFPN features (SSH, shuffle, heads)."""
    outs = [head(net.shuffle(ssh(f))) for ssh, head, f in zip(net.ssh, net.heads, feats)]
    return tuple(torch.cat([o[i] for o in outs], dim=1)[0] for i in range(3))


def trunk(net, x: torch.Tensor) -> list[torch.Tensor]:
    """Nano's post-BiFPN features (backbone, attention, BiFPN)."""
    return net.bifpn_cbam(net.bifpn(net.backbone_cbam(list(net.backbone(x)))))


def step_loss(model, start, x: np.ndarray, boxes: np.ndarray, points: np.ndarray, hold: float,
              rng: np.random.Generator, train_all: bool, beta: float = 1.0) -> tuple[torch.Tensor, float, float]:
    xt = torch.from_numpy(x)[None]
    with torch.no_grad():
        feats0 = trunk(start, xt)
        loc0, conf0, _ = context_and_heads(start, feats0)
    loc, conf, lm = context_and_heads(model, trunk(model, xt) if train_all else feats0)
    prob0 = torch.softmax(conf0, -1)[:, 1].numpy()
    h, w = x.shape[1:]
    priors = pixel_priors(h, w)
    cand = np.flatnonzero(prob0 >= 0.1)
    lm_loss = torch.zeros(())
    if len(cand):
        iou = iou_matrix(decode_boxes(loc0.numpy()[cand], priors[cand]), boxes)
        best = iou.argmax(axis=1)
        ok = iou[np.arange(len(cand)), best] >= 0.4
        cand, best = cand[ok], best[ok]
        if len(cand):
            a = priors[cand]
            enc = torch.from_numpy(((points[best] - a[:, None, :2]) / (0.1 * a[:, None, 2:])).reshape(-1, 10))
            wt = torch.from_numpy(prob0[cand])
            per = F.smooth_l1_loss(lm[cand], enc, beta=beta, reduction="none").mean(dim=1)
            lm_loss = (per * wt).sum() / wt.sum()
    active = prob0 >= 0.01
    active |= rng.random(len(prob0)) < 0.05
    idx = torch.from_numpy(np.flatnonzero(active))
    keep = F.mse_loss(loc[idx], loc0[idx]) + F.mse_loss(conf[idx], conf0[idx])
    return lm_loss + hold * keep, float(lm_loss), float(keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pool", type=Path)
    ap.add_argument("labels", type=Path, help="labels.json with landmarks (scripts/label_pool.py)")
    ap.add_argument("out", type=Path, help="the fine-tuned checkpoint to write")
    ap.add_argument("--start", type=Path, default=None, help="checkpoint to start from (default: the bundled nano.pt)")
    ap.add_argument("--steps", type=int, default=2000, help="optimiser steps in all (a rerun continues)")
    ap.add_argument("--photos-per-step", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--hold", type=float, default=10.0, help="weight of the detection-holding term")
    ap.add_argument("--min-score", type=float, default=0.6, help="label faces below this score are not targets")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--train", choices=("context", "all"), default="context", help="the layers trained")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--look-share", type=float, default=0.0,
                    help="share of samples that are second-look crops (the rest: whole photos at long side 640)")
    ap.add_argument("--beta", type=float, default=1.0,
                    help="smooth-L1 transition of the landmark loss, in encoded units (1.0: Huber; small: L1)")
    ap.add_argument("--min-side", type=float, default=24.0, help="smallest label face (px) a second-look crop is cut around")
    ap.add_argument("--exclude", type=Path, default=None, help="a file of photo names (one a line) never trained on")
    ap.add_argument("--seed", type=int, default=0,
                    help="sampling seed (0: the draws of the released runs); another seed draws other samples")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(a.threads)

    start_path = a.start or resolve_weights("nano", torch_backend=True)
    model, ckpt = load_model(start_path)
    start = copy.deepcopy(model).eval()
    # the frozen trunk: BatchNorm statistics stay the starting ones everywhere
    model.eval()
    trainable = list(model.parameters()) if a.train == "all" else [p for m in (model.ssh, model.heads) for p in m.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(trainable, lr=a.lr, weight_decay=0.0)
    state_path = a.out.with_name(a.out.name + ".state.pt")
    step = 0
    if state_path.is_file():
        st = torch.load(state_path, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        log.info("resumed at step %d", step)

    labels = json.loads(a.labels.read_text())["images"]
    held = held_out_photos()
    if a.exclude:
        held = held | read_photo_list(a.exclude)
    names = sorted(n for n in labels if n not in held and (a.pool / n).is_file()
                   and len(targets(labels[n], a.min_score)[0]))
    log.info("%d labelled training photos", len(names))
    # a resumed run draws anew from a generator seeded by the step it resumes at (and the seed)
    rng = np.random.default_rng(step if a.seed == 0 else (a.seed, step))
    order = random.Random(a.seed)
    queue: list[str] = []
    bar = tqdm(total=a.steps, initial=step, desc="steps")
    while step < a.steps:
        lr = a.lr * 0.5 * (1 + np.cos(np.pi * step / a.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        sums = [0.0, 0.0]
        for _ in range(a.photos_per_step):
            if not queue:
                queue = names.copy()
                order.shuffle(queue)
            name = queue.pop()
            if rng.random() < a.look_share:
                s = look_sample(a.pool, name, labels[name], rng, a.min_score, a.min_side)
            else:
                s = sample(a.pool, name, labels[name], bool(rng.random() < 0.5), a.min_score)
            if s is None:
                continue
            loss, lm_l, keep_l = step_loss(model, start, *s, a.hold, rng, a.train == "all", a.beta)
            (loss / a.photos_per_step).backward()
            sums[0] += lm_l / a.photos_per_step
            sums[1] += keep_l / a.photos_per_step
        torch.nn.utils.clip_grad_norm_(trainable, 10.0)
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(landmarks=f"{sums[0]:.3f}", held=f"{sums[1]:.5f}")
        if step % a.save_every == 0 or step == a.steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, state_path)
            log.info("step %d: landmark loss %.4f, detection drift %.6f", step, sums[0], sums[1])
    meta = dict(ckpt.get("meta", {}))
    stage = {"labels": a.labels.name, "steps": a.steps, "photos_per_step": a.photos_per_step, "lr": a.lr,
             "hold": a.hold, "min_score": a.min_score, "trained": a.train, "look_share": a.look_share,
             "beta": a.beta, "min_side": a.min_side}
    if a.seed:
        stage["seed"] = a.seed
    # one entry per fine-tune the weights went through, oldest first
    before = meta.get("landmark_finetune")
    meta["landmark_finetune"] = (before if isinstance(before, list) else [before] if before else []) + [stage]
    atomic_save(make_checkpoint(model, ckpt["arch"], meta), a.out)
    log.info("wrote %s", a.out)


if __name__ == "__main__":
    main()
