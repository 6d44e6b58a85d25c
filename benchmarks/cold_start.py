"""What a command-line or serverless user waits for: a whole `featherface detect` process on one
photo against a whole `deface` process, in turns, plus `import featherface` alone, and the size of
the light install against one with PyTorch.

    python benchmarks/cold_start.py LIGHT_VENV DEFACE_VENV [PHOTO] [--rounds 7] [--torch-venv VENV]

LIGHT_VENV: a virtual environment where `pip install <repository>` (no extras) ran; DEFACE_VENV:
one with `pip install deface==1.5.0`; --torch-venv: one with `pip install "<repository>[torch]"`.
"""
import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def site_packages_mb(venv: Path) -> float:
    sp = next(venv.glob("lib/python*/site-packages"))
    return sum(f.stat().st_size for f in sp.rglob("*") if f.is_file()) / 2**20


ap = argparse.ArgumentParser()
ap.add_argument("light", type=Path)
ap.add_argument("deface", type=Path)
ap.add_argument("photo", nargs="?", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "images" / "crowd_baseball.jpg"))
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--torch-venv", type=Path)
a = ap.parse_args()
times: dict[str, list[float]] = {}
with tempfile.TemporaryDirectory() as tmp:
    commands = {
        "import featherface": [str(a.light / "bin" / "python"), "-c", "import featherface"],
        "featherface detect PHOTO --no-draw": [str(a.light / "bin" / "featherface"), "-q", "detect", a.photo, "--no-draw",
                                               "--overwrite", "--output", f"{tmp}/ff"],
        # boxes only (deface's job): no second look at the landmarks
        "featherface detect PHOTO --no-draw --no-refine-landmarks": [
            str(a.light / "bin" / "featherface"), "-q", "detect", a.photo, "--no-draw", "--no-refine-landmarks",
            "--overwrite", "--output", f"{tmp}/ff1"],
        "deface PHOTO": [str(a.deface / "bin" / "deface"), a.photo, "-o", f"{tmp}/deface.jpg"],
    }
    for _ in range(a.rounds):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.setdefault(name, []).append(time.perf_counter() - t0)
print("| whole process | median s |\n|---|---:|")
for name, v in times.items():
    print(f"| {name} | {statistics.median(v):.2f} |")
print(f"\nsite-packages: light install {site_packages_mb(a.light):.0f} MB" +
      (f", with [torch] {site_packages_mb(a.torch_venv):.0f} MB" if a.torch_venv else ""))
