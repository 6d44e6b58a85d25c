"""Measure how another box source's boxes map onto the teacher's (V1's) box convention, on pool
photos, and optionally store the map in that labels.json as ``"box_convention"`` (read by
``featherface distill --pool-labels``, :func:`featherface.data.pool.read_pool_labels`).

Why: the task targets mix the teacher's own detections with boxes from elsewhere (human labels,
a stronger detector's). Boxes of another convention (tighter, shifted) would teach the student
two box shapes for one face, so they are mapped to V1's first.

Method: V1 (score >= 0.5, long side 640) runs on a deterministic spread of ``--sample`` photos
that the labels file gives boxes for; boxes are matched one-to-one at IoU >= 0.5 and the medians
of the size ratios and centre offsets are the map (:func:`featherface.data.pool.measure_convention`).

    python scripts/box_convention.py POOL/labels/scrfd_2.5g.json POOL --sample 300 --write
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from tqdm import tqdm

from featherface import FaceDetector
from featherface.data.pool import label_boxes, measure_convention
from featherface.core.files import atomic_write_text, read_image

log = logging.getLogger("box_convention")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("labels", help="labels.json (our format; keys relative to the images root)")
    p.add_argument("images", help="the photo pool root")
    p.add_argument("--teacher", default="../shared/weights/featherface_v1_official.pth")
    p.add_argument("--sample", type=int, default=300, help="photos to measure on (default 300)")
    p.add_argument("--min-score", type=float, default=0.5, help="label boxes with a score below this are ignored")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--write", action="store_true", help='store the result in the labels file as "box_convention"')
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    path = Path(args.labels)
    data = json.loads(path.read_text())
    items = []
    for rel, item in sorted(data["images"].items()):
        b = label_boxes(item, args.min_score)
        if len(b):
            items.append((rel, b))
    step = max(1, len(items) // args.sample)
    items = items[::step][: args.sample]
    det = FaceDetector.from_pretrained(args.teacher, num_threads=args.threads, score_threshold=0.5,
                                       refine_landmarks=False)  # boxes only
    ref, other = [], []
    for rel, b in tqdm(items, desc="teacher"):
        ref.append(det.detect_arrays(read_image(Path(args.images) / rel)).boxes)
        other.append(b)
    conv, pairs = measure_convention(ref, other)
    result = {**conv.to_dict(), "pairs": pairs, "photos": len(items), "teacher": Path(args.teacher).name}
    print(json.dumps(result))
    if args.write:
        data["box_convention"] = result
        atomic_write_text(path, json.dumps(data))
        log.info("wrote box_convention into %s", path)


if __name__ == "__main__":
    main()
