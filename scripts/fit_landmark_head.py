"""Refit Nano's landmark readout on better points: the three 1x1 landmark convs (32 -> 2 x 10 per
level, 1,980 parameters), everything else frozen, so boxes and scores stay bit-identical.

Why only the readout: the bundled Nano learnt its points from V1, whose points are no better
(benchmarks/results/landmark_error.md). The shared head features already carry where the eyes,
nose and mouth are; the readout turns them into points in V1's convention and with V1's errors.
Refitting it on another detector's points (SCRFD-2.5G's, from ``scripts/label_pool.py``) moves the
points without touching detection.

What is fitted, per level and anchor slot: the weights ``W (10 x 32)`` and bias of a linear map
from the head's shared features at an anchor to the encoded landmarks
``(p - a_c) / (0.1 * a_wh)`` (the network's own coding). The samples are the anchors inference
uses: per labelled face, every anchor whose decoded box overlaps it at IoU >= 0.4 with a face
probability >= 0.1, weighted by that probability (box voting averages these candidates by score).
Photos run at long side 640 (the detector's default) and mirrored (points swapped left/right).
The loss is Huber (delta 1.0 in encoded units, by reweighted least squares) with a ridge pulling
towards the bundled readout (``--ridge``, per sample weight); the photos of the landmark dev set
(``featherface/data/landmark_dev.txt``) are never used.

    python scripts/fit_landmark_head.py POOL POOL/labels/scrfd_2.5g.json OUT.pt [--photos 8000]
"""
from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from featherface.models.checkpoint import atomic_save, load_model, make_checkpoint
from featherface.core.constants import MIRROR_ORDER
from featherface.core.detector import preprocess
from featherface.core.files import read_image
from featherface.core.geometry import iou_matrix
from featherface.core.priors import decode_boxes, pixel_priors
from featherface.core.weights import resolve_weights
from featherface.data.pool import held_out_photos

log = logging.getLogger("fit_landmark_head")


def targets(item: dict, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(K, 4)`` and landmarks ``(K, 5, 2)`` (original pixels) of a labels.json entry with
    score >= ``min_score`` and landmarks."""
    keep = [i for i, (s, lm) in enumerate(zip(item["scores"], item["landmarks"])) if s >= min_score and lm]
    boxes = np.array([item["boxes"][i] for i in keep], np.float32).reshape(-1, 4)
    points = np.array([item["landmarks"][i] for i in keep], np.float32).reshape(-1, 5, 2)
    return boxes, points


class Collector:
    """Runs Nano on photos and keeps, per level, the shared head features of the anchors inference
    uses, with the encoded target points and the weights."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.features: list[torch.Tensor] = []
        for head in model.heads:
            head.shared.register_forward_hook(lambda _m, _i, out: self.features.append(out))
        self.samples: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in model.heads]

    @torch.no_grad()
    def add(self, image: np.ndarray, boxes: np.ndarray, points: np.ndarray) -> int:
        x, (sx, sy) = preprocess(image, long_side=640)
        h, w = x.shape[1:]
        boxes = boxes / np.array([sx, sy, sx, sy], np.float32)
        points = points / np.array([sx, sy], np.float32)
        self.features.clear()
        loc, conf, _ = self.model(torch.from_numpy(x)[None])
        prob = torch.softmax(conf[0], -1)[:, 1].numpy()
        priors = pixel_priors(h, w)
        decoded = decode_boxes(loc[0].numpy(), priors)
        cand = np.flatnonzero(prob >= 0.1)
        if not len(cand) or not len(boxes):
            return 0
        iou = iou_matrix(decoded[cand], boxes)
        best = iou.argmax(axis=1)
        ok = iou[np.arange(len(cand)), best] >= 0.4
        cand, best = cand[ok], best[ok]
        start = 0
        for level, f in enumerate(self.features):
            fh, fw = f.shape[2:]
            n = fh * fw * 2
            sel = (cand >= start) & (cand < start + n)
            idx = cand[sel] - start
            cell, slot = idx // 2, idx % 2
            feats = f[0].reshape(f.shape[1], -1).T.numpy()[cell]  # (k, 32)
            a = priors[cand[sel]]
            enc = (points[best[sel]] - a[:, None, :2]) / (0.1 * a[:, None, 2:])
            self.samples[level].append((feats, slot, enc.reshape(-1, 10), prob[cand[sel]]))
            start += n
        return int(ok.sum())


def fit(samples, w0: np.ndarray, b0: np.ndarray, ridge: float, delta: float = 1.0, rounds: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Huber regression with a ridge towards ``(w0, b0)`` for each anchor slot. ``w0 (20, 32)``,
    ``b0 (20,)`` are a level's 1x1 conv (rows ``slot * 10 + j``)."""
    feats = np.concatenate([s[0] for s in samples]).astype(np.float64)
    slot = np.concatenate([s[1] for s in samples])
    y = np.concatenate([s[2] for s in samples]).astype(np.float64)
    wt = np.concatenate([s[3] for s in samples]).astype(np.float64)
    w, b = w0.astype(np.float64).copy(), b0.astype(np.float64).copy()
    for a in (0, 1):
        m = slot == a
        if m.sum() < 100:
            continue
        X = np.concatenate([feats[m], np.ones((int(m.sum()), 1))], axis=1)
        theta0 = np.concatenate([w0[a * 10:(a + 1) * 10], b0[a * 10:(a + 1) * 10, None]], axis=1).T.astype(np.float64)
        theta = theta0.copy()
        reg = ridge * wt[m].sum() * np.eye(X.shape[1])
        for _ in range(rounds):
            r = X @ theta - y[m]
            # Huber weights per sample (on the point-set residual norm)
            rn = np.linalg.norm(r, axis=1) / np.sqrt(5)
            hub = np.where(rn <= delta, 1.0, delta / np.maximum(rn, 1e-9))
            sw = wt[m] * hub
            A = (X * sw[:, None]).T @ X + reg
            B = (X * sw[:, None]).T @ y[m] + reg @ theta0
            theta = np.linalg.solve(A, B)
        w[a * 10:(a + 1) * 10], b[a * 10:(a + 1) * 10] = theta[:-1].T, theta[-1]
        log.info("slot %d: %d samples, mean |residual| %.3f -> %.3f", a, int(m.sum()),
                 np.abs(X @ theta0 - y[m]).mean(), np.abs(X @ theta - y[m]).mean())
    return w.astype(np.float32), b.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pool", type=Path, help="the training photo pool root")
    ap.add_argument("labels", type=Path, help="labels.json with landmarks (scripts/label_pool.py)")
    ap.add_argument("out", type=Path, help="the refitted checkpoint to write")
    ap.add_argument("--start", type=Path, default=None, help="checkpoint to start from (default: the bundled nano.pt)")
    ap.add_argument("--photos", type=int, default=8000, help="labelled photos to use (random, seed 0)")
    ap.add_argument("--min-score", type=float, default=0.6, help="label faces below this score are not targets")
    ap.add_argument("--ridge", type=float, default=0.01, help="pull towards the starting readout, per unit of sample weight")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(a.threads)

    start = a.start or resolve_weights("nano", torch_backend=True)
    model, ckpt = load_model(start)
    labels = json.loads(a.labels.read_text())["images"]
    held = held_out_photos()
    names = sorted(n for n in labels if n not in held and (a.pool / n).is_file())
    random.Random(0).shuffle(names)
    col = Collector(model)
    used = faces = 0
    for name in tqdm(names, desc="photos"):
        if used >= a.photos:
            break
        boxes, points = targets(labels[name], a.min_score)
        if not len(boxes):
            continue
        image = read_image(a.pool / name)
        faces += col.add(image, boxes, points)
        wd = image.shape[1]
        fb = np.stack([wd - boxes[:, 2], boxes[:, 1], wd - boxes[:, 0], boxes[:, 3]], axis=1)
        fp = points[:, list(MIRROR_ORDER)] * np.array([-1, 1], np.float32) + np.array([wd, 0], np.float32)
        faces += col.add(np.ascontiguousarray(image[:, ::-1]), fb, fp)
        used += 1
    log.info("%d photos (and their mirror images), %d anchor samples", used, faces)
    for level, head in enumerate(model.heads):
        conv = head.landmark
        w, b = fit(col.samples[level], conv.weight[:, :, 0, 0].detach().numpy(), conv.bias.detach().numpy(), a.ridge)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w)[:, :, None, None])
            conv.bias.copy_(torch.from_numpy(b))
    meta = dict(ckpt.get("meta", {}))
    meta["landmark_refit"] = {"labels": a.labels.name, "photos": used, "anchor_samples": faces, "min_score": a.min_score,
                              "ridge": a.ridge, "loss": "Huber (delta 1.0, encoded units), reweighted least squares"}
    atomic_save(make_checkpoint(model, ckpt["arch"], meta), a.out)
    log.info("wrote %s", a.out)


if __name__ == "__main__":
    main()
