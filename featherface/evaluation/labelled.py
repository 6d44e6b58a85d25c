"""Accuracy against human face labels, for any labelled set (protocol of ``featherface evaluate
--labels``).

Protocol (fixed here, printed and saved with every result):

* each image is given to the detector resized so its long side is ``long_side`` pixels (640);
  detections come back in the pixels of the image as stored, where the labels live;
* detections are ranked from score 0.02 (NMS IoU 0.4, at most 750 per image);
* matching, per image, detections in decreasing score order: each goes to the still-unmatched
  labelled box of highest IoU (continuous coordinates, no +1 pixel); IoU >= 0.5 makes it a true
  positive, otherwise it is a false positive;
* AP: VOC all-point AP (area under the precision envelope) of all images' detections ranked by
  score, recall over all labelled faces; detections with EQUAL scores are one point of the curve
  (no threshold separates them; splitting ties would favour detectors with coarse scores);
* AP (faces >= 16 px): labelled faces whose width or height is below 16 pixels (in the image as
  stored) are ignored: a detection whose best available match (IoU >= 0.5) is an ignored face is
  dropped, neither true nor false positive (ignored faces never become "used", VOC "difficult"
  style), and ignored faces do not count in recall;
* precision, recall and F1 at the model's own score threshold (all faces);
* landmark NME: per matched face with labelled landmarks (at the model's threshold), the mean
  distance of the five points divided by the inter-ocular distance of the label, averaged over
  faces; ``None`` when the labels have no landmarks.

How sure an AP is (:func:`bootstrap_ap`): the images are the sampling unit. A resample draws as
many images as the set has, with replacement, and recomputes AP with each image counted as often
as it was drawn (its faces and its detections alike). The same draws serve every detector scored
on the set, so the difference between two detectors' APs gets a paired interval: what a hidden
set of the same kind and size could show. 95 % percentile intervals over 1,000 resamples by
default.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.annotations import ImageAnnotation
from ..core.detector import resize_long_side
from ..core.geometry import iou_matrix
from ..core.postprocess import Detections
from .widerface import ranking_precision_recall, tie_group_ends, voc_ap

IOU_THRESHOLD = 0.5
MIN_FACE_PX = 16.0
BOOTSTRAP_RESAMPLES = 1000


def match_detections(det: Detections, gt: ImageAnnotation, ignore: np.ndarray | None = None,
                     iou: float = IOU_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Match ONE image's detections (in the order given: decreasing score) to its labelled faces.

    Returns ``(flags, matched)``: ``flags (P,)`` int8, 1 true positive, 0 false positive, -1
    dropped (matched an ignored face); ``matched (P,)`` the labelled face index or -1."""
    p = len(det)
    flags = np.zeros(p, np.int8)
    matched = np.full(p, -1, np.int64)
    if p == 0 or len(gt) == 0:
        return flags, matched
    ignore = np.zeros(len(gt), bool) if ignore is None else ignore
    overlaps = iou_matrix(det.boxes, gt.boxes)
    used = np.zeros(len(gt), bool)
    for k in range(p):
        ov = np.where(used, -1.0, overlaps[k])
        j = int(ov.argmax())
        if ov[j] < iou:
            continue
        if ignore[j]:
            flags[k] = -1
            continue
        used[j] = True
        flags[k], matched[k] = 1, j
    return flags, matched


@dataclass
class LabelledResult:
    ap: float
    ap_16: float
    precision: float
    recall: float
    f1: float
    nme: float | None
    num_images: int
    num_faces: int
    num_faces_16: int
    num_detections: int
    threshold: float
    curve: np.ndarray = field(repr=False)  # (P, 2) precision, recall at each operating point (a run of equal scores is one)
    curve_16: np.ndarray = field(repr=False)
    # per labelled image, in the labels' order: the detections' scores and all-faces flags, and
    # the number of labelled faces (what bootstrap_ap resamples)
    image_scores: list[np.ndarray] = field(default_factory=list, repr=False)
    image_flags: list[np.ndarray] = field(default_factory=list, repr=False)
    image_faces: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def to_dict(self) -> dict:
        keys = ("ap", "ap_16", "precision", "recall", "f1", "nme", "num_images", "num_faces", "num_faces_16",
                "num_detections", "threshold")
        return {k: getattr(self, k) for k in keys}

    def summary(self) -> str:
        nme = "n/a (no landmarks in the labels)" if self.nme is None else f"{self.nme:.4f}"
        return (f"AP {self.ap:.4f} | AP (faces >= 16 px) {self.ap_16:.4f} | at threshold {self.threshold:g}: "
                f"precision {self.precision:.4f}, recall {self.recall:.4f}, F1 {self.f1:.4f} | landmark NME {nme} "
                f"| {self.num_images} images, {self.num_faces} faces ({self.num_faces_16} >= 16 px), "
                f"{self.num_detections} detections")


def _ap_and_curve(scores: list[np.ndarray], flags: list[np.ndarray], n_gt: int) -> tuple[float, np.ndarray]:
    s = np.concatenate(scores) if scores else np.zeros(0)
    f = np.concatenate(flags) if flags else np.zeros(0, np.int8)
    keep = f >= 0  # dropped detections leave the ranking
    s, f = s[keep], f[keep]
    if n_gt == 0:
        return float("nan"), np.zeros((0, 2))
    if len(s) == 0:
        return 0.0, np.zeros((0, 2))
    order = np.argsort(-s, kind="stable")
    precision, recall = ranking_precision_recall(f[order] == 1, tie_group_ends(s[order]), n_gt)
    return voc_ap(recall, precision), np.column_stack([precision, recall])


def evaluate_labelled(predictions: dict[str, Detections], labels: dict[str, ImageAnnotation],
                      threshold: float = 0.5, min_face: float = MIN_FACE_PX) -> LabelledResult:
    """Score ``predictions`` (image name -> detections in the labels' pixels; a missing name
    counts as an image without detections) against ``labels`` with the module's protocol."""
    scores, flags_all, flags_16 = [], [], []
    tp_thr = n_det_thr = 0
    nme_values: list[float] = []
    n_faces = n_faces_16 = n_det = 0
    for name, gt in labels.items():
        det = predictions.get(name, Detections())
        order = np.argsort(-det.scores, kind="stable")
        det = Detections(det.boxes[order], det.scores[order], det.landmarks[order])
        wh = gt.boxes[:, 2:] - gt.boxes[:, :2]
        small = (wh < min_face).any(axis=1)
        n_faces += len(gt)
        n_faces_16 += int((~small).sum())
        n_det += len(det)
        f_all, matched = match_detections(det, gt)
        f_16, _ = match_detections(det, gt, small)
        scores.append(det.scores)
        flags_all.append(f_all)
        flags_16.append(f_16)
        above = det.scores >= threshold
        n_det_thr += int(above.sum())
        tp_thr += int((f_all[above] == 1).sum())
        for k in np.flatnonzero(above & (f_all == 1)):
            j = matched[k]
            if gt.has_landmarks[j]:
                ref = gt.landmarks[j].reshape(5, 2)
                iod = float(np.linalg.norm(ref[0] - ref[1]))
                if iod > 0:
                    pred = det.landmarks[k].reshape(5, 2)
                    nme_values.append(float(np.linalg.norm(pred - ref, axis=1).mean()) / iod)
    ap, curve = _ap_and_curve(scores, flags_all, n_faces)
    ap16, curve16 = _ap_and_curve(scores, flags_16, n_faces_16)
    precision = tp_thr / n_det_thr if n_det_thr else 0.0
    recall = tp_thr / n_faces if n_faces else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelledResult(ap, ap16, precision, recall, f1, float(np.mean(nme_values)) if nme_values else None,
                          len(labels), n_faces, n_faces_16, n_det, threshold, curve, curve16,
                          scores, flags_all, np.array([len(g) for g in labels.values()], np.int64))


class _Ranking:
    """One result's detections in global ranking order, with their image indices, so that AP with
    per-image multiplicities is two weighted cumulative sums (no re-sorting per resample)."""

    def __init__(self, r: LabelledResult) -> None:
        if len(r.image_scores) != len(r.image_faces):
            raise ValueError("this result has no per-image records (made by evaluate_labelled?)")
        ids = np.concatenate([np.full(len(s), i, np.int64) for i, s in enumerate(r.image_scores)] or [np.zeros(0, np.int64)])
        s = np.concatenate(r.image_scores) if r.image_scores else np.zeros(0)
        f = np.concatenate(r.image_flags) if r.image_flags else np.zeros(0, np.int8)
        order = np.argsort(-s, kind="stable")  # the order evaluate_labelled ranks in
        self.ids, self.tp, self.faces = ids[order], (f[order] == 1).astype(np.float64), r.image_faces
        self.last = tie_group_ends(s[order])

    def ap(self, counts: np.ndarray) -> float:
        n_gt = float(counts @ self.faces)
        if n_gt == 0:
            return float("nan")
        # k copies of a detection are one more tie: the same operating points as k entries
        precision, recall = ranking_precision_recall(self.tp, self.last, n_gt, counts[self.ids].astype(np.float64))
        return voc_ap(recall, precision)


def weighted_ap(result: LabelledResult, counts: np.ndarray) -> float:
    """AP of ``result`` with image ``i`` (labels' order) counted ``counts[i]`` times. All ones
    gives ``result.ap``."""
    return _Ranking(result).ap(np.asarray(counts))


def bootstrap_ap(results: list[LabelledResult], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> np.ndarray:
    """APs of each result on ``resamples`` image resamples (module docstring), the same draws for
    all: ``(resamples, len(results))`` float64. The results must come from one labelled set."""
    if not results:
        return np.zeros((resamples, 0))
    n = results[0].num_images
    if any(r.num_images != n or not np.array_equal(r.image_faces, results[0].image_faces) for r in results):
        raise ValueError("bootstrap_ap pairs results of ONE labelled set (same images, same order)")
    rankings = [_Ranking(r) for r in results]
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, len(results)))
    for k in range(resamples):
        counts = np.bincount(rng.integers(n, size=n), minlength=n)
        out[k] = [rk.ap(counts) for rk in rankings]
    return out


def interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples`` (1-D)."""
    lo, hi = np.nanpercentile(samples, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def plot_pr_curve(results: dict[str, LabelledResult], path, title: str = "") -> None:
    """PR curves (all faces, solid; faces >= 16 px, dashed) of one or more results to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for label, r in results.items():
        (line,) = ax.plot(r.curve[:, 1], r.curve[:, 0], label=f"{label} AP {r.ap:.3f}") if len(r.curve) else (None,)
        if len(r.curve_16):
            ax.plot(r.curve_16[:, 1], r.curve_16[:, 0], "--", color=line.get_color() if line else None,
                    label=f"{label} AP>=16px {r.ap_16:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title or "precision-recall against human labels (IoU 0.5)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scale_detections(d: Detections, sx: float, sy: float) -> Detections:
    if len(d) == 0:
        return d
    f = np.array([sx, sy], np.float32)
    return Detections((d.boxes.reshape(-1, 2, 2) * f).reshape(-1, 4), d.scores,
                      (d.landmarks.reshape(-1, 5, 2) * f).reshape(d.landmarks.shape))


def predict_labelled(detect, images_dir, names, long_side: int | None = 640, progress: bool = False
                     ) -> tuple[dict[str, Detections], list[str]]:
    """Run ``detect(image) -> Detections`` (pixels of the image it is given) on every labelled
    image, each first resized to ``long_side``; detections are mapped back to the pixels of the
    image as stored. Returns ``(predictions, missing)``: names whose file is absent or unreadable
    are listed in ``missing`` and count as images without detections."""
    from pathlib import Path

    from ..core.files import read_image

    preds: dict[str, Detections] = {}
    missing: list[str] = []
    names = list(names)
    if progress:
        from tqdm import tqdm

        names = tqdm(names, unit="img", leave=False, disable=None)  # silent when not a terminal
    for name in names:
        path = Path(images_dir) / name
        try:
            image = read_image(path)
        except (FileNotFoundError, ValueError):
            missing.append(name)
            continue
        small, (sx, sy) = resize_long_side(image, long_side)
        preds[name] = scale_detections(detect(small), sx, sy)
    return preds, missing


def evaluate_on_labels(det, images: Path, labels_path: Path, long_side: int | None, classes: set[str] | None = None,
                       progress: bool = True, labels: dict | None = None) -> tuple[LabelledResult, dict, list[str]]:
    """Run a :class:`FaceDetector` over a labelled set with the protocol of
    :mod:`featherface.evaluation.labelled`. Returns ``(result, protocol, missing images)``.
    ``labels``: ``labels_path`` already read (``read_face_labels(labels_path, classes)``)."""
    from ..data.face_labels import read_face_labels

    if labels is None:
        labels = read_face_labels(labels_path, classes)
    if not labels:
        raise ValueError(f"{labels_path}: no labelled images")
    threshold = det.cfg.score_threshold  # the model's own operating point
    ranking = 0.02
    preds, missing = predict_labelled(lambda im: det.detect_arrays(im, long_side=None, score_threshold=ranking),
                                      images, labels, long_side, progress)
    result = evaluate_labelled(preds, labels, threshold)
    protocol = {"labels": str(labels_path), "images": str(images), "resize": f"long side resized to {long_side}"
                if long_side else "original size", "ranking_score_threshold": ranking, "nms_iou": det.cfg.nms_iou,
                "box_voting": det.cfg.box_voting, "top_k": det.cfg.top_k, "keep_top_k": det.cfg.keep_top_k, "iou": 0.5,
                "matching": "per image, detections in decreasing score order to the unmatched labelled box of highest IoU "
                            "(continuous coordinates)", "ap": "VOC all-point (precision envelope)",
                "ap_16": "labelled faces with width or height < 16 px (as stored) ignored; detections matched to them dropped",
                "model_threshold": threshold, "images_missing": len(missing)}
    return result, protocol, missing
