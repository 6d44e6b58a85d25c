"""FeatherFace's anonymiser against deface, in one run, on human-labelled photos and on a video.

    pip install deface==1.5.0   # in its own virtual environment: it pins other versions
    python benchmarks/anonymize_vs_deface.py SET [SET ...] --deface /path/to/venv/bin/deface [--video] [--variant NAME=ARGS]

SET: a folder with ``labels.json`` and ``images/`` (``../shared/benchmarks/maskfaces_dev`` ...).
Both tools run as whole commands at their defaults with a solid black fill
(``featherface anonymize DIR --output OUT --mode solid``, ``deface DIR --replacewith solid``), in
turns, photos at their own resolution. Then, from the output pixels alone (the same rule for
both): a pixel is masked when it was not dark (max channel > 60) and is now black (max channel <=
30). A labelled face of 10 px or more is **visible** when under half of its non-dark pixels are
masked; **masked outside** is the share of the image masked outside the labelled faces grown by
0.15 on each side (both tools grow their masks by that much). With ``--video``: a 10 fps 640x480
video with a tone, a camera panning over four photos of the first SET (25 frames each), run through
both tools; frames, audio, frames per second and visible faces per frame.
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

BANDS = ((10, 20), (20, 40), (40, 10**9))


def masked_pixels(original: np.ndarray, output: np.ndarray) -> np.ndarray:
    return (original.max(axis=2) > 60) & (output.max(axis=2) <= 30)


def score(original: np.ndarray, output: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(visible flags, face widths) of the labelled faces of 10 px or more, and the masked share outside."""
    m = masked_pixels(original, output)
    evidence = original.max(axis=2) > 60
    h, w = m.shape
    faces = np.zeros((h, w), bool)
    visible, widths = [], []
    for x1, y1, x2, y2 in boxes:
        bw, bh = x2 - x1, y2 - y1
        faces[max(0, int(y1 - 0.15 * bh)):int(np.ceil(y2 + 0.15 * bh)), max(0, int(x1 - 0.15 * bw)):int(np.ceil(x2 + 0.15 * bw))] = True
        if bw < 10:
            continue
        sl = (slice(max(0, int(y1)), int(np.ceil(y2))), slice(max(0, int(x1)), int(np.ceil(x2))))
        n = evidence[sl].sum()
        if n < 10:  # a face with (almost) no non-dark pixels cannot be judged from the pixels
            continue
        visible.append(m[sl].sum() / n < 0.5)
        widths.append(bw)
    return np.array(visible, bool), np.array(widths), float((m & ~faces).sum() / m.size)


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        sys.exit(f"{cmd[0]} failed: {r.stderr[-2000:]}")
    return time.perf_counter() - t0


def report(name: str, visible: np.ndarray, widths: np.ndarray, outside: list[float], seconds: float, n: int) -> str:
    bands = " | ".join(f"{visible[(widths >= lo) & (widths < hi)].mean() * 100:.1f}" for lo, hi in BANDS)
    return (f"| {name} | {visible.mean() * 100:.1f} | {bands} | {statistics.mean(outside) * 100:.2f} | "
            f"{n / seconds:.1f} |")


def run_set(folder: Path, deface: str, tmp: Path, variants: dict[str, list[str]]) -> None:
    labels = json.loads((folder / "labels.json").read_text())["images"]
    src = tmp / folder.name / "in"
    src.mkdir(parents=True)
    for name in labels:
        shutil.copy(folder / "images" / name, src / Path(name).name)
    dfdir = tmp / folder.name / "deface"
    shutil.copytree(src, dfdir)
    seconds = {"deface": timed([deface, str(dfdir), "--replacewith", "solid"])}
    for tool, extra in variants.items():  # in turns with deface: deface first, then each variant
        seconds[tool] = timed([sys.executable, "-m", "featherface.cli", "-q", "anonymize", str(src), "--output",
                               str(tmp / folder.name / tool), "--mode", "solid", *extra])
    rows = []
    for tool in [*variants, "deface"]:
        vis, wid, out = [], [], []
        for name, item in labels.items():
            stem = Path(name)
            original = cv2.imread(str(src / stem.name))
            path = dfdir / f"{stem.stem}_anonymized{stem.suffix}" if tool == "deface" else tmp / folder.name / tool / stem.name
            result = cv2.imread(str(path))
            v, w, o = score(original, result, np.array(item["boxes"], np.float64).reshape(-1, 4))
            vis.append(v)
            wid.append(w)
            out.append(o)
        rows.append(report(tool, np.concatenate(vis), np.concatenate(wid), out, seconds[tool], len(labels)))
    n_faces = sum(1 for item in labels.values() for b in item["boxes"] if b[2] - b[0] >= 10)
    print(f"\n{folder.name}: {len(labels)} photos, {n_faces} labelled faces of 10 px or more\n")
    print("| tool | faces visible % | 10-20 px | 20-40 px | 40+ px | masked outside faces % | photos/s (whole command) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows), flush=True)


def run_video(folder: Path, deface: str, tmp: Path, variants: dict[str, list[str]]) -> None:
    import imageio_ffmpeg

    labels = json.loads((folder / "labels.json").read_text())["images"]
    # four shots of 25 frames: a camera panning over each of the first four photos with 5 faces or more
    names = [n for n in sorted(labels) if len(labels[n]["boxes"]) >= 5][:4]
    frames_dir = tmp / "frames"
    frames_dir.mkdir()
    gts = []
    for k, name in enumerate(names):
        img = cv2.imread(str(folder / "images" / name))
        h, w = img.shape[:2]
        boxes = np.array(labels[name]["boxes"], np.float64).reshape(-1, 4)
        cw, ch = 0.8 * w, 0.8 * h
        for t in range(25):
            x0, y0 = 0.2 * w * t / 24, 0.1 * h * t / 24
            m = np.float32([[640 / cw, 0, -x0 * 640 / cw], [0, 480 / ch, -y0 * 480 / ch]])
            cv2.imwrite(str(frames_dir / f"{25 * k + t:04d}.png"), cv2.warpAffine(img, m, (640, 480), flags=cv2.INTER_LINEAR))
            b = (boxes - [x0, y0, x0, y0]) * [640 / cw, 480 / ch, 640 / cw, 480 / ch]
            cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
            gts.append(np.clip(b[(cx > 0) & (cx < 640) & (cy > 0) & (cy < 480)], 0, [640, 480, 640, 480]))
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    video = tmp / "dev.mp4"
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-framerate", "10", "-i", str(frames_dir / "%04d.png"), "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=10", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(video)], check=True)
    df_out = tmp / "video_df.mp4"
    seconds = {"deface": timed([deface, str(video), "--replacewith", "solid", "--keep-audio", "-o", str(df_out)])}
    for tool, extra in variants.items():
        seconds[tool] = timed([sys.executable, "-m", "featherface.cli", "-q", "anonymize", str(video), "--output",
                               str(tmp / f"video_{tool}"), "--mode", "solid", *extra])
    originals = list(_frames(video))
    print(f"\nvideo: 100 frames, a camera panning over 4 photos of {folder.name} (4 shots), 10 fps 640x480 H.264 "
          f"with an AAC tone\n")
    print("| tool | frames out | audio kept | faces visible % | masked outside % | frames/s (whole command) |")
    print("|---|---:|---|---:|---:|---:|")
    for tool, path in [*((t, tmp / f"video_{t}" / "dev.mp4") for t in variants), ("deface", df_out)]:
        out_frames = list(_frames(path))
        vis, outside = [], []
        for o, r, gt in zip(originals, out_frames, gts):
            v, _, s = score(o, r, gt)
            vis.append(v)
            outside.append(s)
        probe = subprocess.run([ffmpeg, "-i", str(path)], capture_output=True, text=True).stderr
        print(f"| {tool} | {len(out_frames)} | {'yes' if 'Audio:' in probe else 'no'} | {np.concatenate(vis).mean() * 100:.1f} | "
              f"{statistics.mean(outside) * 100:.2f} | {len(gts) / seconds[tool]:.1f} |")


def _frames(path: Path):
    cap = cv2.VideoCapture(str(path))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield frame
    cap.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--deface", required=True, help="the deface executable (deface 1.5.0)")
    ap.add_argument("--video", action="store_true", help="also a video made from the first SET's photos")
    ap.add_argument("--video-only", action="store_true", help="only the video")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=ARGS",
                    help="also run `featherface anonymize` with these extra options, e.g. 'one pass=--second-pass 0'")
    a = ap.parse_args()
    variants = {"featherface": []}
    for v in a.variant:
        name, _, extra = v.partition("=")
        variants[name] = extra.split()
    with tempfile.TemporaryDirectory() as tmp:
        for folder in [] if a.video_only else a.sets:
            run_set(folder, a.deface, Path(tmp), variants)
        if a.video or a.video_only:
            run_video(a.sets[0], a.deface, Path(tmp), variants)


if __name__ == "__main__":
    main()
