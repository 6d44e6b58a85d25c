"""Build the hand/arm occluder bank for ``featherface distill --occlude-style cutout|mixed``.

Reads Clothing Co-Parsing's pixel-level labels (``annotations/pixel-level/NNNN.mat``, key
``groundtruth``) from a checkout or a git snapshot of ``bearpaw/clothing-co-parsing`` (the
``fetch`` mirror is a git directory without a work tree: files are read with ``git show``), the
matching pool photos (``POOL/street_fashion/photos/NNNN.jpg``) and face boxes from a pool label file
(``scripts/label_pool.py``'s SCRFD labels), and writes the limbs of every photo with a face scored
at least ``--min-score`` (:func:`featherface.data.occluders.limb_cutouts`) to one ``.npz``.

The bank holds photo pixels: write it next to the pool, never into git.

    python scripts/build_occluder_bank.py MIRROR/bearpaw+clothing-co-parsing/repo POOL \\
        POOL/labels/scrfd_2.5g.json POOL/occluders/ccp_limbs.npz
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.io
from tqdm import tqdm

from featherface.data.occluders import OccluderBank, limb_cutouts
from featherface.core.files import read_image

log = logging.getLogger("build_occluder_bank")
LABELS = "annotations/pixel-level"


def label_files(ccp: Path) -> tuple[list[str], Callable[[str], bytes]]:
    """The ``.mat`` names and a reader of their bytes, from a work tree or a git directory."""
    if (ccp / LABELS).is_dir():
        return sorted(p.name for p in (ccp / LABELS).glob("*.mat")), lambda n: (ccp / LABELS / n).read_bytes()
    git = ["git", "-C", str(ccp)]
    names = subprocess.run(git + ["ls-tree", "--name-only", f"HEAD:{LABELS}"], capture_output=True, text=True,
                           check=True).stdout.split()
    return sorted(n for n in names if n.endswith(".mat")), \
        lambda n: subprocess.run(git + ["show", f"HEAD:{LABELS}/{n}"], capture_output=True, check=True).stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ccp", type=Path, help="clothing-co-parsing checkout or git directory")
    p.add_argument("pool", type=Path, help="the photo pool (extract_photos.py's DEST)")
    p.add_argument("labels", type=Path, help="pool label file with face boxes and scores")
    p.add_argument("out", type=Path, help="the bank to write (.npz)")
    p.add_argument("--source", default="street_fashion/photos", help="the pool folder of the CCP photos")
    p.add_argument("--min-score", type=float, default=0.5, help="faces used (to remove heads and set the scale)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    images = json.loads(args.labels.read_text())["images"]
    names, read = label_files(args.ccp)
    cutouts, used = [], 0
    for name in tqdm(names, desc="photos", unit="photo"):
        rel = f"{args.source}/{Path(name).stem}.jpg"
        entry = images.get(rel)
        if entry is None:
            continue
        scores = np.asarray(entry["scores"])
        order = np.argsort(scores)[::-1]  # the best face first: it sets the scale
        faces = np.asarray(entry["boxes"], np.float32).reshape(-1, 4)[order[scores[order] >= args.min_score]]
        if not len(faces):
            continue
        parts = scipy.io.loadmat(io.BytesIO(read(name)))["groundtruth"]
        image = read_image(args.pool / rel)
        if image.shape[:2] != parts.shape:
            log.warning("%s: image %s and labels %s differ in size; skipped", rel, image.shape[:2], parts.shape)
            continue
        found = limb_cutouts(image, parts, faces)
        cutouts += found
        used += bool(found)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    OccluderBank(cutouts).save(args.out)
    log.info("%d cut-outs from %d of %d labelled photos -> %s (%.1f MB)", len(cutouts), used, len(names), args.out,
             args.out.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
