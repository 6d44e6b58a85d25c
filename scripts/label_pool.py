"""Label the training photo pool with another detector (a peer model file), once, for use as extra
task targets in distillation (``featherface distill --pool-labels``).

Why: the teacher V1 misses many masked and small faces (maskfaces_dev AP 0.77), and its online
pseudo-labels are all the student's task term learns from on photos without human boxes. A
stronger detector's boxes, added where the teacher sees nothing, give the task term those faces;
the KD term still distils V1 alone.

Output: our ``labels.json`` format (pixel ``x1, y1, x2, y2`` boxes in the photo as stored, keys
relative to the pool root) plus ``"scores"`` per box, so the training run can choose its own
minimum score, and ``"detector"`` / ``"score_min"`` describing how it was made. Every photo
processed gets an entry, with no boxes where the detector found none. The boxes are in the
DETECTOR's convention; ``scripts/box_convention.py`` measures the map to V1's and writes it into
the file as ``"box_convention"``.

Resumable: finished photos are appended to ``OUT.partial.jsonl``; a rerun skips them, and the
final JSON is written atomically.

    python scripts/label_pool.py ../shared/peers/scrfd_2.5g_kps.onnx POOL \
        POOL/labels/scrfd_2.5g.json --workers 2
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing as mp
import time
from pathlib import Path

from tqdm import tqdm

from featherface.core.files import atomic_write_text, list_images, read_image
from featherface.peers.runners import PEER_FILES

log = logging.getLogger("label_pool")
_runner = None


def _init(model: str) -> None:
    global _runner
    cls, name = PEER_FILES[Path(model).name]
    _runner = cls(model, num_threads=1, name=name)  # one thread per worker process


def _label(job: tuple[str, str, float]) -> tuple[str, dict]:
    root, rel, score_min = job
    try:
        image = read_image(Path(root) / rel)
    except ValueError as exc:
        return rel, {"error": str(exc)}
    d = _runner.detect_arrays(image, score_threshold=score_min)
    landmarks = [None if not _runner.has_landmarks else [round(float(v), 1) for v in p.reshape(-1)]
                 for p in d.landmarks]
    return rel, {"boxes": [[round(float(v), 1) for v in b] for b in d.boxes],
                 "scores": [round(float(s), 3) for s in d.scores], "landmarks": landmarks}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a peer model file known to featherface.peers (e.g. scrfd_2.5g_kps.onnx)")
    p.add_argument("images", help="the photo pool root")
    p.add_argument("out", help="labels.json to write")
    p.add_argument("--score-min", type=float, default=0.3, help="keep detections with score >= this (default 0.3)")
    p.add_argument("--workers", type=int, default=2, help="processes, one thread each (default 2)")
    p.add_argument("--limit", type=int, help="only the first N photos (for a quick check)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    model, out = Path(args.model), Path(args.out)
    files = list_images(args.images)[: args.limit]
    partial = out.with_name(out.name + ".partial.jsonl")
    done: dict[str, dict] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            if line.strip():
                rel, item = json.loads(line)
                done[rel] = item
    todo = [f for f in files if f not in done]
    log.info("%d photos, %d already labelled, %d to go (%s, %d workers)", len(files), len(done), len(todo), model.name, args.workers)
    t0 = time.time()
    out.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("a") as fh, mp.Pool(args.workers, initializer=_init, initargs=(str(model),)) as pool:
        jobs = [(args.images, rel, args.score_min) for rel in todo]
        for rel, item in tqdm(pool.imap_unordered(_label, jobs, chunksize=8), total=len(jobs), desc="labelling"):
            fh.write(json.dumps([rel, item]) + "\n")
            done[rel] = item
    errors = {k: v["error"] for k, v in done.items() if "error" in v}
    wanted = set(files)
    images = {k: v for k, v in sorted(done.items()) if "error" not in v and k in wanted}
    data = {"name": out.stem, "detector": {"file": model.name, "sha256": sha256(model)},
            "score_min": args.score_min, "source": f"{model.name} run by scripts/label_pool.py on {args.images}",
            "images": images, "unreadable": errors}
    atomic_write_text(out, json.dumps(data))
    n = sum(len(v["boxes"]) for v in images.values())
    log.info("wrote %s: %d faces (score >= %.2f) in %d photos, %d unreadable, %.1f photos/s",
             out, n, args.score_min, len(images), len(errors), len(todo) / max(time.time() - t0, 1e-9))


if __name__ == "__main__":
    main()
