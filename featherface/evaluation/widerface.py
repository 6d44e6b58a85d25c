"""WIDER FACE validation AP, Easy/Medium/Hard, with the community's protocol.

This reproduces the Python port of the official MATLAB evaluation used throughout the RetinaFace
community, operation for operation, in vectorised NumPy (no Cython):

* predictions per image are ``x, y, w, h, score`` rows, taken in the order given (files written
  by FeatherFace are sorted by decreasing score, as the protocol assumes);
* scores are min-max normalised over the WHOLE prediction set;
* IoU uses the "+1" pixel convention of the original ``bbox_overlaps``, threshold 0.5;
* per image, each prediction is matched to its highest-IoU ground truth; a match on a face outside
  the setting's keep-list ("ignore" face) is neither a true nor a false positive; a second match on
  an already-recalled face is a false positive;
* 1,000 score thresholds ``1 - (t + 1) / 1000``; proposals and recalls are accumulated over all
  images, precision = recalled / proposed, recall = recalled / kept faces;
* AP is the VOC area under the precision envelope.

Images with no ground-truth box or no prediction contribute only their kept-face count.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..data.annotations import MatGroundTruth

log = logging.getLogger(__name__)

SETTINGS = ("easy", "medium", "hard")
THRESH_NUM = 1000
IOU_THRESHOLD = 0.5


def bbox_overlaps(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, K)`` of xyxy boxes with the "+1" pixel convention (float64), computed
    with the same operations as the original Cython ``bbox_overlaps`` so that argmax ties and
    threshold comparisons come out identical."""
    b = boxes.astype(np.float64)
    q = query.astype(np.float64)
    q_area = (q[:, 2] - q[:, 0] + 1) * (q[:, 3] - q[:, 1] + 1)
    iw = np.minimum(b[:, None, 2], q[None, :, 2]) - np.maximum(b[:, None, 0], q[None, :, 0]) + 1
    ih = np.minimum(b[:, None, 3], q[None, :, 3]) - np.maximum(b[:, None, 1], q[None, :, 1]) + 1
    b_area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    inter = iw * ih
    ua = b_area[:, None] + q_area[None, :] - inter
    valid = (iw > 0) & (ih > 0)
    return np.where(valid, inter / np.where(valid, ua, 1.0), 0.0)


@dataclass
class _ImageMatch:
    """Per-image matching facts that do not depend on the setting."""

    max_overlap: np.ndarray  # (P,)
    max_idx: np.ndarray  # (P,)
    t_first: np.ndarray  # (P,) first threshold index at which each prediction counts


def _thresholds() -> np.ndarray:
    return np.array([1 - (t + 1) / THRESH_NUM for t in range(THRESH_NUM)], dtype=np.float64)


def _image_pr(match: _ImageMatch, ignore: np.ndarray) -> np.ndarray:
    """``(THRESH_NUM, 2)``: proposals and recalled faces at each threshold for one image."""
    p = len(match.max_idx)
    hit = match.max_overlap >= IOU_THRESHOLD
    on_ignored = hit & (ignore[match.max_idx] == 0)
    on_kept = hit & ~on_ignored
    # pred_recall[h]: kept faces recalled by predictions 0..h = first hits per face, cumulated.
    first = np.zeros(p, bool)
    kept_idx = np.flatnonzero(on_kept)
    if kept_idx.size:
        _, first_pos = np.unique(match.max_idx[kept_idx], return_index=True)
        first[kept_idx[first_pos]] = True
    pred_recall = np.cumsum(first)
    proposals = np.cumsum(~on_ignored)  # proposal_list == 1 counted over 0..h
    # r_index(t) = last prediction (in file order) whose normalised score >= threshold t.
    last = np.full(THRESH_NUM + 1, -1, np.int64)
    np.maximum.at(last, match.t_first, np.arange(p))
    r_index = np.maximum.accumulate(last[:THRESH_NUM])
    out = np.zeros((THRESH_NUM, 2))
    ok = r_index >= 0
    out[ok, 0] = proposals[r_index[ok]]
    out[ok, 1] = pred_recall[r_index[ok]]
    return out


def voc_ap(rec: np.ndarray, prec: np.ndarray) -> float:
    """Area under the precision envelope (VOC style)."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def tie_group_ends(sorted_scores: np.ndarray) -> np.ndarray:
    """Mask of the last detection of each run of equal scores in a ranking sorted by score.

    Detections with the same score form ONE operating point of the curve: no threshold separates
    them. Splitting a tie in whatever order the ranking happens to have adds intermediate points,
    and since the VOC envelope takes the best precision at any higher recall, extra points can
    only raise AP. A detector with coarse scores (an INT8 graph's uint8 probabilities give a few
    hundred distinct values) would gain AP from ties alone."""
    return np.r_[sorted_scores[1:] != sorted_scores[:-1], True]


def ranking_precision_recall(is_tp: np.ndarray, ends: np.ndarray, n_gt: float, weights: np.ndarray | None = None
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at the operating points of a ranking sorted by decreasing score.

    ``is_tp (D,)`` true positives (bool or 0/1), ``ends (D,)`` :func:`tie_group_ends` of the
    sorted scores, ``n_gt`` the faces to recall, ``weights (D,)`` how often each detection counts
    (default once; points before anything with weight > 0 is ranked are left out).
    Returns ``(precision, recall)``, one entry per operating point, for :func:`voc_ap`."""
    w = np.ones(len(is_tp)) if weights is None else weights
    n = np.cumsum(w)
    points = ends & (n > 0)
    tp = np.cumsum(w * is_tp)[points]
    return tp / n[points], tp / n_gt


@dataclass
class EvalResult:
    ap: dict[str, float]
    curves: dict[str, np.ndarray] = field(repr=False)  # setting -> (THRESH_NUM, 2) precision, recall
    missing: list[str] = field(default_factory=list)  # "event/image" with no prediction entry
    num_predictions: int = 0

    def summary(self) -> str:
        return "  ".join(f"{s.capitalize()} AP {self.ap[s]:.4f}" for s in SETTINGS)


def normalise_scores(preds: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """Min-max normalise the score column over the whole prediction set (returns copies)."""
    arrays = [v for ev in preds.values() for v in ev.values() if len(v)]
    if not arrays:
        return {e: {k: v.copy() for k, v in ev.items()} for e, ev in preds.items()}
    lo = min(float(np.min(v[:, -1])) for v in arrays)
    hi = max(float(np.max(v[:, -1])) for v in arrays)
    diff = hi - lo
    out = {}
    for e, ev in preds.items():
        out[e] = {}
        for k, v in ev.items():
            v = v.astype(np.float64).copy()
            if len(v):
                # A constant score set is degenerate (the reference divides by zero); keep all at 1.
                v[:, -1] = (v[:, -1] - lo) / diff if diff > 0 else 1.0
            out[e][k] = v
    return out


def evaluate_predictions(preds: dict[str, dict[str, np.ndarray]], gt: MatGroundTruth) -> EvalResult:
    """AP for Easy/Medium/Hard.

    Args:
        preds: ``{event: {image name without extension: (P, 5) x, y, w, h, score}}``.
            Images absent from ``preds`` count as having no predictions and are listed in
            ``EvalResult.missing``.
        gt: the official ground truth (:func:`load_mat_ground_truth`).
    """
    preds = normalise_scores(preds)
    thresholds = _thresholds()
    neg_thr = -thresholds  # ascending, for searchsorted
    matches: list[_ImageMatch | None] = []
    missing: list[str] = []
    n_pred = 0
    for event, name, e, i in gt:
        p = preds.get(event, {}).get(name)
        if p is None:
            missing.append(f"{event}/{name}")
            p = np.zeros((0, 5))
        n_pred += len(p)
        g = gt.boxes[e][i]
        if len(g) == 0 or len(p) == 0:
            matches.append(None)
            continue
        pb = p[:, :4].copy()
        pb[:, 2] += pb[:, 0]
        pb[:, 3] += pb[:, 1]
        gb = g.copy()
        gb[:, 2] += gb[:, 0]
        gb[:, 3] += gb[:, 1]
        ov = bbox_overlaps(pb, gb)
        # First threshold t with thresholds[t] <= score (same float64 comparison as the reference).
        t_first = np.searchsorted(neg_thr, -p[:, 4], side="left")
        matches.append(_ImageMatch(ov.max(axis=1), ov.argmax(axis=1), t_first))
    ap, curves = {}, {}
    for setting in SETTINGS:
        pr = np.zeros((THRESH_NUM, 2))
        count_face = 0
        for (event, name, e, i), m in zip(gt, matches):
            keep = gt.keep[setting][e][i]
            count_face += len(keep)
            if m is None:
                continue
            ignore = np.zeros(len(gt.boxes[e][i]))
            if len(keep):
                ignore[keep - 1] = 1
            pr += _image_pr(m, ignore)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = pr[:, 1] / pr[:, 0]
            recall = pr[:, 1] / count_face if count_face else np.zeros(THRESH_NUM)
        curves[setting] = np.stack([precision, recall], axis=1)
        ap[setting] = voc_ap(recall, precision)
    return EvalResult(ap, curves, missing, n_pred)


# ---------------------------------------------------------------- prediction files


def write_prediction_file(path: Path, image_name: str, boxes_xywh_score: np.ndarray) -> None:
    """One image in the official submission format: name line, count line, ``x y w h score``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [image_name, str(len(boxes_xywh_score))]
    lines += [f"{x:.1f} {y:.1f} {w:.1f} {h:.1f} {s:.5f}" for x, y, w, h, s in boxes_xywh_score]
    path.write_text("\n".join(lines) + "\n")


def read_prediction_file(path: Path) -> tuple[str, np.ndarray]:
    """Read one submission file; returns ``(image name without extension, (P, 5) float64)``."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a name line and a count line")
    name = Path(lines[0].strip()).name
    try:
        count = int(float(lines[1].strip() or 0))
    except ValueError:
        raise ValueError(f"{path}:2: expected the number of boxes, got {lines[1][:40]!r}") from None
    rows = []
    for k, line in enumerate(lines[2:], 3):
        if not line.strip():
            continue
        try:
            v = [float(t) for t in line.split()]
        except ValueError:
            raise ValueError(f"{path}:{k}: expected 'x y w h score', got {line[:60]!r}") from None
        if len(v) != 5:
            raise ValueError(f"{path}:{k}: expected 5 numbers (x y w h score), got {len(v)}")
        if not np.isfinite(v).all():
            raise ValueError(f"{path}:{k}: non-finite value in {line.strip()[:60]!r}")
        rows.append(v)
    if len(rows) != count:
        log.warning("%s: count line says %d boxes, found %d", path, count, len(rows))
    stem = name[:-4] if name.lower().endswith(".jpg") else Path(name).stem
    return stem, np.asarray(rows, np.float64).reshape(-1, 5)


def read_prediction_folder(pred_dir: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``<pred_dir>/<event>/<image>.txt`` -> ``{event: {image: (P, 5)}}``."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"prediction folder not found: {pred_dir}")
    out: dict[str, dict[str, np.ndarray]] = {}
    for event_dir in sorted(p for p in pred_dir.iterdir() if p.is_dir()):
        ev = out.setdefault(event_dir.name, {})
        for f in sorted(event_dir.glob("*.txt")):
            name, boxes = read_prediction_file(f)
            ev[name] = boxes
    if not any(out.values()):
        raise FileNotFoundError(f"no prediction files (<event>/<image>.txt) under {pred_dir}")
    return out


def plot_pr_curves(result: EvalResult, path: Path, title: str = "WIDER FACE val") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for s in SETTINGS:
        c = result.curves[s]
        ok = np.isfinite(c[:, 0])
        ax.plot(c[ok, 1], c[ok, 0], label=f"{s} AP {result.ap[s]:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_report(result: EvalResult, out_dir: Path, protocol: dict) -> Path:
    """Write ``ap.json`` (APs + protocol + missing images) and ``pr_curves.png`` into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "ap": result.ap,
        "protocol": {
            "iou_threshold": IOU_THRESHOLD, "score_thresholds": THRESH_NUM, "score_normalisation": "min-max over all predictions",
            "matching": "per image, predictions in file order (sorted by score), highest-IoU ground truth, +1 pixel IoU",
            "ap": "VOC, precision envelope", "reference": "Python port of the official WIDER FACE MATLAB evaluation",
            **protocol,
        },
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "num_predictions": result.num_predictions,
        "missing_images": result.missing,
    }
    path = out_dir / "ap.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    try:
        plot_pr_curves(result, out_dir / "pr_curves.png")
    except ImportError:
        log.warning("matplotlib not installed: PR curves not drawn (pip install featherface[plot])")
    return path


def run_model_on_val(det, images_dir: Path, gt, pred_dir: Path) -> list[str]:
    """Detect on every validation image listed in ``gt`` and write official prediction files.
    Returns the images missing from ``images_dir`` (reported, then evaluated as empty)."""
    from tqdm import tqdm

    from ..core.files import read_image

    missing = []
    for event, name, _, _ in tqdm(list(gt), desc="WIDER val", unit="img"):
        path = images_dir / event / f"{name}.jpg"
        if not path.is_file():
            missing.append(f"{event}/{name}")
            continue
        d = det.detect_arrays(read_image(path))
        xywh = np.column_stack([d.boxes[:, :2], d.boxes[:, 2:] - d.boxes[:, :2], d.scores]) if len(d) else np.zeros((0, 5))
        write_prediction_file(pred_dir / event / f"{name}.txt", f"{name}.jpg", xywh)
    return missing
