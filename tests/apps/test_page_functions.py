"""The page's pure functions under Node against vectors written here by the Python package: the
resize and mean subtraction, priors, decoding with threshold/top-k/NMS/voting/clipping, greedy NMS,
detection passes, mask geometry and the landmarks' second look must be the library's (web/test/page_functions.test.mjs).
The Chromium test (test_webapp.py) checks the whole page on photos."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from featherface.apps.webapp import site_config
from featherface.core.anonymize import anonymize_passes, mask_regions
from featherface.core.constants import MEAN_BGR
from featherface.core.detector import FaceDetector, long_side_size, preprocess
from featherface.core.postprocess import Detections, PostProcessConfig, RawOutputs, nms, postprocess_image
from featherface.core.priors import pixel_priors
from featherface.core.refine import cut_square, face_squares, merge_looks
from featherface.core.settings import LOOK

ROOT = Path(__file__).resolve().parents[2]
NODE_TEST = ROOT / "web" / "test" / "page_functions.test.mjs"


def vectors() -> dict:
    rng = np.random.default_rng(0)
    cfg = site_config()
    out: dict = {"anchors": cfg["anchors"], "settings": cfg["settings"], "mean": list(MEAN_BGR)}
    out["resize"] = []
    for h, w, long_side in ((37, 53, 64), (100, 70, 48), (31, 29, None), (480, 640, 640)):
        bgr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        rgba = np.concatenate([bgr[:, :, ::-1], np.full((h, w, 1), 255, np.uint8)], axis=2)
        x, _ = preprocess(bgr, "bgr", long_side)
        out["resize"].append({"h": h, "w": w, "longSide": long_side or 0, "rgba": rgba.reshape(-1).tolist(),
                              "size": list(long_side_size(h, w, long_side)), "tensor": x.reshape(-1).round(4).tolist()})
    out["priors"] = [{"h": h, "w": w, "priors": pixel_priors(h, w).reshape(-1).tolist()} for h, w in ((40, 56), (64, 96))]
    out["postprocess"] = []
    nh, nw, scale = 64, 96, (1.5, 1.25)
    n = len(pixel_priors(nh, nw))
    loc = (rng.normal(size=(n, 4)) * 0.5).astype(np.float32)
    conf = (rng.normal(size=(n, 2)) * 2).astype(np.float32)
    lm = rng.normal(size=(n, 10)).astype(np.float32)
    for voting in (True, False):
        d = postprocess_image(RawOutputs(loc, conf, lm), (nh, nw), scale, PostProcessConfig(0.7, 0.4, 60, 25, voting))
        out["postprocess"].append({"loc": loc.reshape(-1).tolist(), "conf": conf.reshape(-1).tolist(),
                                   "landms": lm.reshape(-1).tolist(), "nh": nh, "nw": nw, "scale": list(scale),
                                   "cfg": {"threshold": 0.7, "nmsIou": 0.4, "topK": 60, "keepTopK": 25, "boxVoting": voting},
                                   "boxes": d.boxes.tolist(), "scores": d.scores.tolist(), "landmarks": d.landmarks.tolist()})
    xy = rng.uniform(0, 80, (40, 2))  # crowded: NMS suppresses some
    boxes = np.concatenate([xy, xy + rng.uniform(10, 60, (40, 2))], axis=1).astype(np.float32)
    scores = np.sort(rng.uniform(size=40))[::-1].astype(np.float32)  # the page's faces arrive sorted
    out["nms"] = {"boxes": boxes.tolist(), "iou": 0.4, "keep": nms(boxes, scores, 0.4).tolist()}
    out["passes"] = [{"h": h, "w": w, "first": first, "second": second or 0,
                      "sides": [s or 0 for s in anonymize_passes((h, w), first, second)]}
                     for h, w, first, second in ((408, 612, 640, "full"), (540, 960, 640, "full"), (1080, 1920, 640, "full"),
                                                 (1080, 1920, 640, 800), (1080, 1920, 640, None))]
    det = FaceDetector.from_pretrained("nano")
    out["plans"] = [{"h": h, "w": w, "sides": [s or 0 for s in sides], "plan": [[ls or 0, a, b, m] for ls, a, b, m in
                                                                              det.pass_plan((h, w), sides)]}
                    for h, w, sides in ((2160, 3840, (640, None)), (480, 640, (640,)), (1080, 1920, (640, 800)))]
    out["masks"] = []
    for box, pad in (([10.3, 20.7, 50.2, 70.9], 0.15), ([-5.0, 3.0, 30.0, 40.0], 0.3), ([90.0, 80.0, 130.5, 140.2], 0.0)):
        region = mask_regions(np.array([box]), (120, 100), pad)[0]
        out["masks"].append({"box": box, "pad": pad, "W": 100, "H": 120, "region": [int(v) for v in region]})
    out["look"] = second_look_vectors(rng)
    return out


def second_look_vectors(rng: np.random.Generator) -> dict:
    """Squares around boxes (halves included), cuts of an RGBA image (inside, across the edges,
    mirrored) and merged looks (a match, a decoy, a mirrored reading, a face no look matches)."""
    boxes = np.array([[10.3, 20.7, 50.2, 70.9], [-5.0, 3.0, 30.0, 40.0], [90.0, 80.0, 130.5, 140.25],
                      [2.5, 2.5, 3.5, 3.5], [0.5, 0.5, 2.5, 1.5]], np.float32)
    squares = face_squares(boxes, LOOK.context)
    rgba = rng.integers(0, 256, (23, 31, 4), dtype=np.uint8)
    cuts = [{"x0": x0, "y0": y0, "side": side, "mirror": m, "pixels": cut_square(rgba, x0, y0, side, m).reshape(-1).tolist()}
            for x0, y0, side, m in ((-3, -2, 10, False), (25, 15, 12, True), (5, 6, 7, False), (40, 40, 5, True), (-2, 4, 9, True))]
    found = Detections(boxes[:3], np.array([0.9, 0.8, 0.7], np.float32), rng.uniform(0, 100, (3, 5, 2)).astype(np.float32))
    looks = []
    for i, (x0, y0, side) in enumerate(squares[:3]):
        b = found.boxes[i] - [x0, y0, x0, y0]
        for mirrored in (False, True):
            own = np.array([side - b[2], b[1], side - b[0], b[3]]) if mirrored else b
            decoy = own + [side / 2, 0, side / 2, 0]
            if i == 2:  # only the decoy: the face keeps its first landmarks
                cand = decoy[None]
            else:
                cand = np.stack([decoy, own + rng.normal(0, 1, 4)])
            looks.append(Detections(cand.astype(np.float32), np.full(len(cand), 0.5, np.float32),
                                    rng.uniform(0, side, (len(cand), 5, 2)).astype(np.float32)))
    looks[1] = Detections()  # the first face's mirrored look found nothing
    merged = merge_looks(found, squares[:3], looks)
    face = lambda b, s, lm: {"box": b.tolist(), "score": float(s), "landmarks": lm.tolist()}  # noqa: E731
    return {"context": LOOK.context, "boxes": boxes.tolist(), "squares": squares.tolist(),
            "image": {"h": 23, "w": 31, "rgba": rgba.reshape(-1).tolist()}, "cuts": cuts,
            "faces": [face(*f) for f in zip(found.boxes, found.scores, found.landmarks)],
            "looks": [[face(*f) for f in zip(d.boxes, d.scores, d.landmarks)] for d in looks],
            "merged": merged.landmarks.tolist(), "rules": {"minIou": LOOK.min_iou}}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_page_functions_equal_the_packages(tmp_path):
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps(vectors()))
    r = subprocess.run(["node", "--test", str(NODE_TEST)], capture_output=True, text=True, timeout=120,
                       env={"FEATHERFACE_VECTORS": str(path), "PATH": "/usr/bin:/bin:/usr/local/bin"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "# fail 0" in r.stdout and "# pass 7" in r.stdout, r.stdout[-1500:]
