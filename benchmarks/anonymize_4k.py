"""Small faces in 4K frames: which anonymise settings mask them, at what cost.

    python benchmarks/anonymize_4k.py SET [--frames 3] [--deface /path/to/venv/bin/deface]

Builds 3840x2160 frames from the photos of SET (labels.json + images/), each photo shrunk to
half its size and laid 12 x 10 on the frame, so most faces are 8-40 px wide in a 4K image, then
runs `featherface anonymize --mode solid` on the frames at its defaults (a pass at 640 and one at
the full resolution; no tiling needed: the graph takes any size), with one pass at 640, with one
pass at the full resolution, and with a further pass at twice the resolution (what tiles of half
the frame would cost); and deface at its defaults. Faces visible by width, masked share outside,
seconds per frame; the rules of benchmarks/anonymize_vs_deface.py.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anonymize_vs_deface import BANDS, score  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("set", type=Path)
ap.add_argument("--frames", type=int, default=3)
ap.add_argument("--deface", help="deface executable (deface 1.5.0 in its own virtual environment)")
a = ap.parse_args()
labels = json.loads((a.set / "labels.json").read_text())["images"]
names = sorted(labels)
FF = [sys.executable, "-m", "featherface.cli", "-q", "anonymize"]
VARIANTS = {"FeatherFace defaults (passes at 640 and full resolution)": FF, "one pass at 640": FF + ["--second-pass", "0"],
            "one pass at full resolution (--long-side 0)": FF + ["--long-side", "0"],
            "full resolution and twice it (--long-side 0 --second-pass 7680)": FF + ["--long-side", "0", "--second-pass", "7680"]}
if a.deface:
    VARIANTS["deface 1.5.0 (defaults)"] = [a.deface, "--replacewith", "solid"]
with tempfile.TemporaryDirectory() as tmp:
    src = Path(tmp) / "frames"
    src.mkdir()
    gts = []
    k = 0
    for f in range(a.frames):
        frame = np.zeros((2160, 3840, 3), np.uint8)
        boxes = []
        for r in range(10):
            for c in range(12):
                img = cv2.imread(str(a.set / "images" / names[k % len(names)]))
                b = np.array(labels[names[k % len(names)]]["boxes"], np.float64).reshape(-1, 4)
                k += 1
                s = min(320 / img.shape[1], 216 / img.shape[0])
                small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                y0, x0 = r * 216, c * 320
                frame[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
                boxes.append(b * s + [x0, y0, x0, y0])
        cv2.imwrite(str(src / f"{f}.png"), frame)
        gts.append(np.concatenate(boxes))
    print(f"{a.frames} frames 3840x2160, {sum(len(g) for g in gts)} faces from {a.set.name} "
          f"(widths: median {np.median(np.concatenate(gts)[:, 2] - np.concatenate(gts)[:, 0]):.0f} px)\n")
    print("| setting | faces visible % | " + " | ".join(f"{lo}-{hi if hi < 10**9 else ''} px" for lo, hi in BANDS)
          + " | masked outside % | s per frame |")
    print("|---|---:|" + "---:|" * len(BANDS) + "---:|---:|")
    for k, (name, cmd) in enumerate(VARIANTS.items()):
        out = Path(tmp) / f"out{k}"
        if cmd[:len(FF)] == FF:
            cmd, outputs = [*cmd, str(src), "--output", str(out), "--mode", "solid"], [out / f"{f}.png" for f in range(a.frames)]
        else:  # deface writes FILE_anonymized.png beside each photo of a folder
            shutil.copytree(src, out)
            cmd, outputs = [*cmd, str(out)], [out / f"{f}_anonymized.png" for f in range(a.frames)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        seconds = (time.perf_counter() - t0) / a.frames
        vis, wid, outside = [], [], []
        for f, gt in enumerate(gts):
            v, w, o = score(cv2.imread(str(src / f"{f}.png")), cv2.imread(str(outputs[f])), gt)
            vis.append(v)
            wid.append(w)
            outside.append(o)
        v, w = np.concatenate(vis), np.concatenate(wid)
        bands = " | ".join(f"{v[(w >= lo) & (w < hi)].mean() * 100:.1f}" for lo, hi in BANDS)
        print(f"| {name} | {v.mean() * 100:.1f} | {bands} | {np.mean(outside) * 100:.2f} | {seconds:.2f} |", flush=True)
