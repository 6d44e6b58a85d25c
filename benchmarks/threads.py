"""Threads and workers of a batch run, on an idle machine and with one core kept busy.

    python benchmarks/threads.py PHOTO_FOLDER [--count 300]

`featherface detect FOLDER --output OUT --no-draw` as a whole command, per setting: the default
(--workers = the CPUs, at most 4, one engine thread each), one worker with one thread, one worker
with the engine's own default (--threads 0: all cores), one worker with two threads. "busy": another
process spins on one core meanwhile (what a second job on the machine does). Prints seconds.
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("folder", type=Path)
parser.add_argument("--count", type=int, default=300)
args = parser.parse_args()

SETTINGS = {"default": [], "--workers 1 --threads 1": ["--workers", "1", "--threads", "1"],
            "--workers 1 --threads 0 (engine default)": ["--workers", "1", "--threads", "0"],
            "--workers 1 --threads 2": ["--workers", "1", "--threads", "2"]}
with tempfile.TemporaryDirectory() as tmp:
    src = Path(tmp) / "in"
    src.mkdir()
    for i, p in enumerate(sorted(args.folder.rglob("*.jpg"))[: args.count]):
        shutil.copy(p, src / f"{i:05d}.jpg")
    runs = 0
    print("| setting | idle s | one core busy s |\n|---|---:|---:|")
    for name, extra in SETTINGS.items():
        row = []
        for busy in (False, True):
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                runs += 1
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "featherface.cli", "-q", "detect", str(src), "--output",
                                str(Path(tmp) / f"out{runs}"), "--no-draw", *extra], check=True)
                row.append(time.perf_counter() - t0)
            finally:
                if spinner:
                    spinner.kill()
        print(f"| {name} | {row[0]:.1f} | {row[1]:.1f} |", flush=True)
