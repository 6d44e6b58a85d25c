"""Plot a training run's loss terms and agreement AP: ``python scripts/plot_training_log.py RUN_DIR [RUN_DIR ...] -o curve.png``.

Several run folders are drawn one after the other on a common step axis (a fine-tuning run
continues its parent's curve), or each from step 0 with ``--overlay`` (runs compared on one
budget). Reads ``log.csv`` (every step) and ``eval.csv`` (epoch, step, AP). ``--dev-ap`` is a CSV
with ``step`` and ``maskfaces_dev_ap`` columns; an optional ``run`` column (the run folder's name)
splits it into one series per run.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--smooth", type=int, default=25, help="moving-average window (steps)")
    ap.add_argument("--dev-ap", type=Path, help="CSV with columns step, maskfaces_dev_ap (AP against human labels)"
                    " and optionally run")
    ap.add_argument("--overlay", action="store_true", help="start every run at step 0 instead of chaining them")
    ap.add_argument("--terms", nargs="+", default=["total", "kd", "task", "feature"], help="log.csv columns to draw")
    args = ap.parse_args()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    offset = 0
    for run in args.runs:
        rows = list(csv.DictReader(open(run / "log.csv")))
        steps = [offset + int(r["step"]) for r in rows]
        for key in args.terms:
            ys = [float(r[key]) for r in rows]
            k = args.smooth
            sm = [sum(ys[max(0, i - k + 1):i + 1]) / len(ys[max(0, i - k + 1):i + 1]) for i in range(len(ys))]
            ax1.plot(steps, sm, label=f"{key} ({run.name})")
        if (run / "eval.csv").is_file():
            ev = [l.split(",") for l in (run / "eval.csv").read_text().split()]
            ax2.plot([offset + int(s) for _, s, _ in ev], [float(a) for _, _, a in ev], marker="o", label=run.name)
        if not args.overlay:
            offset = steps[-1] if steps else offset
    ax1.set_yscale("log")
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel(f"loss ({args.smooth}-step moving average)")
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    if args.dev_ap:
        rows = list(csv.DictReader(open(args.dev_ap)))
        for name in dict.fromkeys(r.get("run") for r in rows):  # file order, None when there is no run column
            sel = [r for r in rows if r.get("run") == name]
            label = "maskfaces_dev AP (human labels)" + (f", {name}" if name else "")
            ax2.plot([int(r["step"]) for r in sel], [float(r["maskfaces_dev_ap"]) for r in sel], marker="o", label=label)
    ax2.set_xlabel("optimizer step")
    ax2.set_ylabel("AP@0.5" if args.dev_ap else "agreement AP@0.5 with V1 (held-out photos)")
    ax2.set_ylim(0, 1)
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
