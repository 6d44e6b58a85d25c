"""Distillation throughput on this machine: images per second of one training step (teacher
forward in PyTorch or OpenVINO, online labels, student forward + backward, optimizer step) for
the engine's options, taking turns step by step in one run; and the data path (photo ->
augmented sample) alone.

    python benchmarks/train_throughput.py POOL [--shared ../shared] [--steps 6] [--batch 16] [--size 480]

POOL is the photo pool (``../shared/data/extract_photos.py``). Close other CPU-heavy programs
first. The compute rows exclude data loading, which runs in parallel worker processes during
training (its own row says whether it can keep up).
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from featherface.data.dataset import collate
from featherface.training.config import TrainConfig
from featherface.training.engine import set_backbone_frozen, setup, training_step

ap = argparse.ArgumentParser()
ap.add_argument("pool", type=Path)
ap.add_argument("--shared", type=Path, default=Path("../shared"))
ap.add_argument("--steps", type=int, default=6)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--size", type=int, default=480)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
torch.set_num_threads(args.threads)
v1 = str(args.shared / "weights" / "featherface_v1_official.pth")
variants = {  # name -> (channels_last, frozen-and-shared backbone, teacher backend)
    "full, NCHW": (False, False, "torch"),
    "full, channels_last": (True, False, "torch"),
    "full, channels_last, OpenVINO teacher": (True, False, "openvino"),
    "frozen shared backbone, channels_last": (True, True, "torch"),
}
states = {}
with tempfile.TemporaryDirectory() as tmp:
    for i, (name, (cl, frozen, teacher_backend)) in enumerate(variants.items()):
        labels = args.pool / "labels" / "groupselfies.json"
        cfg = TrainConfig(mode="distill", images=str(args.pool), teacher=v1, init_backbone=v1, online_labels=True,
                          pool_labels=str(labels) if labels.is_file() else None, out=f"{tmp}/{i}",
                          batch_size=args.batch, image_size=args.size, channels_last=cl, workers=0,
                          freeze_backbone_steps=10**6 if frozen else 0, warmup_epochs=0.0,
                          teacher_backend=teacher_backend)
        st = setup(cfg)
        st.net.train()
        if frozen:
            set_backbone_frozen(st.model, True)
        states[name] = st
    ds = next(iter(states.values())).dataset
    t0 = time.perf_counter()
    samples = [ds[i] for i in range(args.batch)]
    load_s = (time.perf_counter() - t0) / args.batch
    times = {k: [] for k in states}
    for step in range(args.steps + 1):  # the first round warms up and is not counted
        for name, st in states.items():
            images, targets = collate(samples)
            t0 = time.perf_counter()
            training_step(st, images, [dict(t) for t in targets])
            if step:
                times[name].append(time.perf_counter() - t0)
base = statistics.median(times["full, NCHW"])
print(f"{args.threads} threads, batch {args.batch}, {args.size} px, median of {args.steps} steps each (taking turns):")
for name, ts in times.items():
    m = statistics.median(ts)
    print(f"  {name:40s} {m:6.2f} s/step  {args.batch / m:5.1f} img/s  time / full NCHW {m / base:.2f}")
print(f"  data path (1 process): {load_s * 1e3:.0f} ms per sample = {1 / load_s:.1f} img/s per loader process")
