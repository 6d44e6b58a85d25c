"""Package a training checkpoint (``last.pt`` or ``model.pt`` of a run) as release weights.

Keeps the model weights and the checkpoint contract (format, arch, preprocessing, landmark
order), drops optimizer/scheduler/RNG state, and records provenance and the recommended score
threshold in ``meta``. The result loads with ``torch.load(weights_only=True)`` like every
FeatherFace checkpoint.

    python scripts/package_weights.py RUN/last.pt featherface/weights/nano.pt \
        --score-threshold 0.15 --note "distilled from official V1 on ../shared/images, see weights/README.md"
"""
from __future__ import annotations

import argparse
import hashlib

from featherface.checkpoint import atomic_save, load_model, read_checkpoint, make_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--score-threshold", type=float, default=None, help="recommended default score threshold")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    ckpt = read_checkpoint(args.src)
    model, _ = load_model(args.src)
    meta = dict(ckpt.get("meta", {}))
    meta.update({"training_step": ckpt.get("step"), "training_epoch": ckpt.get("epoch"), "note": args.note,
                 "source_sha256": hashlib.sha256(open(args.src, "rb").read()).hexdigest()})
    if args.score_threshold is not None:
        meta["score_threshold"] = args.score_threshold
    meta = {k: v for k, v in meta.items() if v is not None}
    atomic_save(make_checkpoint(model, ckpt["arch"], meta=meta), args.dst)
    print(f"wrote {args.dst}: arch {ckpt['arch']}, meta {meta}")


if __name__ == "__main__":
    main()
