"""When Ray pays: images per second of `featherface detect --no-draw` in one process and on Ray Data
with 1 and 2 detector actors (1 and 2 threads each), and Ray's fixed cost.

    python benchmarks/ray_scaling.py PHOTO_FOLDER [--count 200] [--rounds 2]

Each configuration is a whole command (a fresh process, as users run it), in turns, round after
round; the table gives the median wall time, images per second, and the fixed cost (the same
command on one photo). On a cluster the actors spread over the nodes; this measures one machine.
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("folder", type=Path)
parser.add_argument("--count", type=int, default=200)
parser.add_argument("--rounds", type=int, default=2)
args = parser.parse_args()

photos = sorted(p for p in args.folder.rglob("*.jpg"))[: args.count]
CONFIGS = {
    "one process (default: a worker per CPU, 1 thread each)": ["--threads", "1"],
    "one process, a worker per CPU, 2 threads each": ["--threads", "2"],
    "Ray, 1 actor x 1 thread": ["--ray", "--actors", "1", "--threads", "1"],
    "Ray, 2 actors x 1 thread": ["--ray", "--actors", "2", "--threads", "1"],
    "Ray, 2 actors x 2 threads": ["--ray", "--actors", "2", "--threads", "2"],
}
with tempfile.TemporaryDirectory() as tmp:
    many, one = Path(tmp) / "many", Path(tmp) / "one"
    many.mkdir()
    one.mkdir()
    for i, p in enumerate(photos):
        shutil.copy(p, many / f"{i:05d}.jpg")
    shutil.copy(photos[0], one / "0.jpg")
    times: dict[tuple[str, str], list[float]] = {}
    runs = 0
    for r in range(args.rounds):
        for name, extra in CONFIGS.items():
            for label, folder in (("fixed", one), ("many", many)):
                runs += 1
                out = Path(tmp) / f"out_{runs}"
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "featherface.cli", "-q", "detect", str(folder), "--output", str(out),
                                "--no-draw", *extra], check=True, capture_output=True)
                times.setdefault((name, label), []).append(time.perf_counter() - t0)
print(f"{len(photos)} photos from {args.folder}; median of {args.rounds} rounds")
print("| configuration | 1 photo (fixed cost) s | %d photos s | images/s | images/s after the fixed cost |" % len(photos))
print("|---|---:|---:|---:|---:|")
for name in CONFIGS:
    fixed, total = statistics.median(times[(name, "fixed")]), statistics.median(times[(name, "many")])
    print(f"| {name} | {fixed:.1f} | {total:.1f} | {len(photos) / total:.1f} | {(len(photos) - 1) / max(total - fixed, 1e-9):.1f} |")
