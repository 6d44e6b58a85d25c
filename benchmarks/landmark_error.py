"""Landmark error against human-marked points: how well each detector's five points would align a face.

    python benchmarks/landmark_error.py CALTECH_DIR GROUND_TRUTH [--peers ../shared/peers] [--model LABEL=FILE ...]

CALTECH_DIR holds the Caltech 10k WebFaces photos (``pic*.jpg``), GROUND_TRUTH is their
``WebFaces_GroundThruth.txt``: per face, human-marked image-left eye, image-right eye, nose tip and
mouth centre (both in the PigeonDan1/face_reco snapshot that ``../shared/data/SOURCES.md`` names).
The photos are the landmark dev set, ``featherface/data/landmark_dev.txt`` (held out of every
training run); ``--all`` takes every labelled photo instead (``--photos N``: a random N of them).
Every detector runs on the same photos at its own input rule (``--model``: more FeatherFace
checkpoints or graphs, e.g. a candidate, beside the bundled Nano and its INT8 graph); FeatherFace
models run as they ship, landmarks read again in the second look (``featherface.core.refine``), and
Nano also without it; the peers as their authors run them. A labelled face is
found when a detection (score >= 0.3) holds the labelled eyes' midpoint, the one whose eyes are
nearest taken. The error of a face is the mean distance of the four points (the mouth centre is
the mean of the two mouth corners) divided by the labelled inter-ocular distance; the means and
medians are over the faces every detector found, faces with an inter-ocular distance of 10 px or more.
"eyes" is the mean error of the two eyes alone; "scatter" the mean distance left when each point's
mean offset for that detector (its annotation convention: Caltech marks the nose below the tip and
the mouth centre below the corners' midpoint) is removed, i.e. precision apart from convention.
Below the table: the bundled Nano's mean error minus each other detector's, paired on the same
faces, with a 95 % interval from resampling the photos.
"""
import argparse
import random
import sys
from pathlib import Path

import numpy as np

from featherface import FaceDetector, read_image
from featherface.cli.common import default_shared
from featherface.data.pool import held_out_photos

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("images", type=Path)
ap.add_argument("ground_truth", type=Path)
ap.add_argument("--all", action="store_true", help="every labelled photo, not only the landmark dev set")
ap.add_argument("--photos", type=int, default=0, help="a random N of the photos (seed 0; 0: all)")
ap.add_argument("--peers", type=Path, default=default_shared() / "peers")
ap.add_argument("--model", action="append", default=[], metavar="LABEL=FILE", help="another FeatherFace .pt or .onnx")
a = ap.parse_args()

faces: dict[str, list[np.ndarray]] = {}
for line in a.ground_truth.read_text().splitlines():
    parts = line.split()
    if len(parts) == 9:
        faces.setdefault(parts[0], []).append(np.array(parts[1:], np.float64).reshape(4, 2))
dev = {Path(p).name for p in held_out_photos()}
names = sorted(n for n in faces if (a.images / n).is_file() and (a.all or n in dev))
if not names:
    sys.exit(f"no photo of {a.ground_truth} found in {a.images}")
if a.photos:
    random.Random(0).shuffle(names)
    names = sorted(names[: a.photos])

# FeatherFace as it ships (landmarks read again in the second look), and Nano's first look alone
detectors = {"FeatherFace Nano": FaceDetector.from_pretrained("nano", score_threshold=0.3).detect_arrays,
             "FeatherFace Nano, first look only": FaceDetector.from_pretrained(
                 "nano", score_threshold=0.3, refine_landmarks=False).detect_arrays,
             "FeatherFace Nano INT8": FaceDetector.from_pretrained("nano-int8", score_threshold=0.3).detect_arrays}
for spec in a.model:
    label, _, path = spec.partition("=")
    detectors[label] = FaceDetector.from_pretrained(path, score_threshold=0.3).detect_arrays
v1 = default_shared() / "weights" / "featherface_v1_official.pth"
retina = a.peers / "retinaface_mnet0.25_biubug6.pth"
# official checkpoints: PyTorch (the [torch] extra); RetinaFace as its authors run it (one look)
for label, path, refine in (("FeatherFace V1", v1, True), ("RetinaFace-MobileNet0.25", retina, False)):
    if path.is_file():
        detectors[label] = FaceDetector.from_pretrained(path, score_threshold=0.3, refine_landmarks=refine).detect_arrays
from featherface.peers.runners import load_peers  # noqa: E402

for peer in load_peers(a.peers):
    if peer.has_landmarks:
        detectors[peer.name] = lambda img, peer=peer: peer.detect_arrays(img, score_threshold=0.3)


def offsets(points: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``(4, 2)``: each point's offset from the labelled one (left eye, right eye, nose, mouth centre),
    over the labelled inter-ocular distance, in the frame of the labelled eyes (x along the eye line,
    y down the face)."""
    ours = np.stack([landmarks[0], landmarks[1], landmarks[2], landmarks[3:5].mean(axis=0)])
    eye_line = points[1] - points[0]
    iod = np.linalg.norm(eye_line)
    c, s = eye_line / iod
    return (ours - points) @ np.array([[c, s], [-s, c]]).T / iod


NOT_FOUND = np.full((4, 2), np.nan)
found: dict[str, list[np.ndarray]] = {k: [] for k in detectors}
labelled = 0
photo_of: list[int] = []  # per labelled face: the index of its photo (for resampling by photo)
for i_photo, n in enumerate(names):
    img = read_image(a.images / n)
    gts = [p for p in faces[n] if np.linalg.norm(p[1] - p[0]) >= 10]
    labelled += len(gts)
    photo_of += [i_photo] * len(gts)
    for label, detect in detectors.items():
        d = detect(img)
        for p in gts:
            mid = p[:2].mean(axis=0)
            inside = ((d.boxes[:, 0] <= mid[0]) & (mid[0] <= d.boxes[:, 2]) & (d.boxes[:, 1] <= mid[1])
                      & (mid[1] <= d.boxes[:, 3]))
            if not inside.any():
                found[label].append(NOT_FOUND)
                continue
            eyes = d.landmarks[inside][:, :2].mean(axis=1)
            found[label].append(offsets(p, d.landmarks[inside][np.argmin(np.linalg.norm(eyes - mid, axis=1))]))

table = {k: np.array(v) for k, v in found.items()}  # (faces, 4, 2), NaN: not found
common = np.all([~np.isnan(v[:, 0, 0]) for v in table.values()], axis=0)
print(f"{len(names)} photos, {labelled} labelled faces (inter-ocular distance >= 10 px); "
      f"{int(common.sum())} found by every detector\n")
print("| detector | faces found % | mean error (x inter-ocular) | median | eyes | error > 0.25 % | scatter |")
print("|---|---:|---:|---:|---:|---:|---:|")
rows = []
face_error: dict[str, np.ndarray] = {}  # per detector: each common face's mean error
for label, v in table.items():
    c = v[common]
    per_face = np.linalg.norm(c, axis=2)  # (faces, 4) distances
    err = face_error[label] = per_face.mean(axis=1)
    # scatter: the error left when the detector's own mean offset of each point is removed (its
    # annotation convention), i.e. its precision apart from where it puts each point on average
    scatter = np.linalg.norm(c - c.mean(axis=0), axis=2).mean()
    rows.append((err.mean(), f"| {label} | {np.mean(~np.isnan(v[:, 0, 0])) * 100:.1f} | {err.mean():.3f} | "
                 f"{np.median(err):.3f} | {per_face[:, :2].mean():.3f} | {np.mean(err > 0.25) * 100:.1f} | {scatter:.3f} |"))
for _, row in sorted(rows):
    print(row)

# paired: the bundled Nano's mean error minus each other detector's on the same faces, with a 95 %
# interval from 1,000 resamples of the photos (the faces of one photo drawn together)
ours = face_error["FeatherFace Nano"]
photo = np.array(photo_of)[common]
groups = [np.flatnonzero(photo == i) for i in np.unique(photo)]
rng = np.random.default_rng(0)
draws = [np.concatenate([groups[j] for j in rng.integers(len(groups), size=len(groups))]) for _ in range(1000)]
print("\nFeatherFace Nano's mean error minus each detector's (the same faces; 95 % interval from 1,000 "
      "resamples of the photos):\n")
for label, err in face_error.items():
    if label != "FeatherFace Nano":
        diff = ours - err
        lo, hi = np.percentile([diff[d].mean() for d in draws], [2.5, 97.5])
        print(f"* {label}: {diff.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]")
