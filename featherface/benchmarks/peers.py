"""``featherface benchmark --peers``: our models and the detectors people use instead, one run.

For every detector (V1, Nano and RetinaFace-MobileNet0.25 with PyTorch and onnxruntime; YuNet,
SCRFD and Ultra-Light with their own engines), on the same images and thread settings:

* size: parameters (ours: counted in PyTorch; peers: values in the ONNX graph's initializers)
  and model file size;
* latency, end to end as users experience it (preprocessing, network, decoding, NMS), median and
  p90 after warm-up, on a real photo resized to 640x480 and 640x640, with 1 and 2 threads;
* agreement with V1 on every readable photo under the image folder (each resized to a long side
  of 640 first): AP at IoU 0.5 of the detector's ranked detections (score >= 0.05) against V1's
  detections at score >= 0.5, and face counts at each detector's default threshold;
* a grid image of every detector's detections on the crowd photo.

Outputs in the output folder: ``peers.md``, ``peers.json``, ``peers_latency.png``,
``peers_grid.jpg``.
"""
from __future__ import annotations

import logging
import statistics
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from .speed import SIZES, interleaved_times, machine_description, p90
from ..core.detector import FaceDetector, resize_long_side
from ..models.loading import checkpoint_path
from ..evaluation.agreement import agreement_ap
from ..evaluation.labelled import BOOTSTRAP_RESAMPLES, bootstrap_ap, interval
from ..core.drawing import draw_detections
from ..core.files import atomic_write_image, read_images, write_json
from ..core.postprocess import Detections
from ..peers.runners import PeerRunner, load_peers

log = logging.getLogger(__name__)

AGREEMENT_LOW_THRESHOLD = 0.05  # detections ranked for AP
REFERENCE_THRESHOLD = 0.5  # V1 detections taken as the reference


@dataclass
class Entry:
    """One detector as the benchmark drives it."""

    name: str
    engine: str
    parameters: int
    file_mb: float
    default_threshold: float
    input_rule: str
    detect: Callable[[np.ndarray, float], Detections]  # (BGR image, score threshold)
    set_threads: Callable[[int], None]
    results: dict = field(default_factory=dict)


def _our_entries(models: dict[str, str], backend: str, box_voting: bool = True) -> list[Entry]:
    """Entries for our detectors (FeatherFace, and RetinaFace-MobileNet0.25 through the same
    pipeline) on ``backend``; ``box_voting=False`` gives greedy NMS alone, named so in the label.
    Boxes only are compared here: no landmarks' second look (it leaves boxes as they are; its cost
    per face is measured by ``benchmarks/landmark_error.py``)."""
    from ..models.loading import load_any, recommended_threshold
    from ..export.torch_runner import TorchRunner
    from ..export.graph import export_onnx
    from ..models import count_parameters

    entries = []
    for label, weights in models.items():
        path = checkpoint_path(weights)
        model, ckpt = load_any(path)  # loaded once; the detectors below reuse it
        arch, threshold = ckpt.get("arch", "?"), recommended_threshold(ckpt) or 0.5
        holder: dict[str, FaceDetector] = {}
        if backend == "torch":
            holder["det"] = FaceDetector(TorchRunner(model), arch=arch, score_threshold=threshold, long_side=None,
                                         box_voting=box_voting, refine_landmarks=False)
            set_threads = torch.set_num_threads
        else:
            onnx_path = export_onnx(model, Path(tempfile.mkdtemp(prefix="featherface_peers_")) / f"{arch}.onnx", arch,
                                    score_threshold=threshold)

            def set_threads(n: int, onnx_path=onnx_path, holder=holder, backend=backend) -> None:
                holder["det"] = FaceDetector.from_pretrained(onnx_path, backend=backend, num_threads=n, long_side=None,
                                                             box_voting=box_voting, refine_landmarks=False)

            set_threads(1)
        detect = lambda img, thr, holder=holder: holder["det"].detect_arrays(img, score_threshold=thr)
        engine = {"torch": "PyTorch", "onnxruntime": "onnxruntime", "openvino": "OpenVINO"}[backend]
        entries.append(Entry(label if box_voting else f"{label}, greedy NMS", engine, count_parameters(model),
                             path.stat().st_size / 2**20, threshold, "image as given (long side 640)", detect, set_threads))
    return entries


def _graph_entries(graphs: dict[str, Path], backend: str) -> list[Entry]:
    """Entries for exported graphs (e.g. INT8 from ``featherface export --int8``) on ``backend``.
    The engine is part of the name: INT8 kernels differ between engines (measured AP differs), so
    each engine gets its own accuracy row."""
    from ..peers.runners import onnx_parameter_count

    entries = []
    for label, path in graphs.items():
        holder: dict[str, FaceDetector] = {}

        def set_threads(n: int, path=path, holder=holder) -> None:
            holder["det"] = FaceDetector.from_pretrained(str(path), backend=backend, num_threads=n, long_side=None,
                                                         refine_landmarks=False)
            if backend == "openvino":
                # the labelled sets have ~80 image shapes per set: compile each once, not per image
                holder["det"].runner.cache_size = 256

        set_threads(1)
        threshold = holder["det"].cfg.score_threshold
        detect = lambda img, thr, holder=holder: holder["det"].detect_arrays(img, score_threshold=thr)
        engine = {"onnxruntime": "onnxruntime", "openvino": "OpenVINO"}[backend]
        entries.append(Entry(f"{label} ({engine})", engine, onnx_parameter_count(Path(path)), Path(path).stat().st_size / 2**20,
                             threshold, "image as given (long side 640)", detect, set_threads))
    return entries


def _peer_entry(runner: PeerRunner) -> Entry:
    engine = "OpenCV FaceDetectorYN" if type(runner).__name__ == "YuNet" else "onnxruntime"
    return Entry(runner.name, engine, runner.parameters, runner.path.stat().st_size / 2**20, runner.score_threshold,
                 runner.input_rule, lambda img, thr, r=runner: r.detect_arrays(img, thr), runner.set_num_threads)


def _photos(folder: Path, long_side: int = 640) -> list[tuple[str, np.ndarray]]:
    # the detector's own resize rule (also the human-label protocol's)
    return [(name, resize_long_side(img, long_side)[0]) for name, img in read_images(folder)]


def _resize_to(img: np.ndarray, h: int, w: int) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def run_peer_benchmark(entries: list[Entry], photos: list[tuple[str, np.ndarray]], crowd: np.ndarray,
                       reference: Entry, threads=(1, 2), sizes=SIZES, warmup: int = 3, repeat: int = 20,
                       progress: bool = True) -> dict:
    """Measure every entry; returns the result dict (also what ``peers.json`` holds)."""
    from tqdm import tqdm

    ref = [reference.detect(img, REFERENCE_THRESHOLD) for _, img in photos]
    rows = {}
    for e in tqdm(entries, desc="agreement", disable=not progress):
        e.set_threads(max(threads))
        preds = [e.detect(img, AGREEMENT_LOW_THRESHOLD) for _, img in photos]
        counts = [int((p.scores >= e.default_threshold).sum()) for p in preds]
        crowd_faces = int((e.detect(crowd, AGREEMENT_LOW_THRESHOLD).scores >= e.default_threshold).sum())
        rows[e.name + e.engine] = {"name": e.name, "engine": e.engine, "parameters": e.parameters, "file_mb": e.file_mb,
                                   "default_threshold": e.default_threshold, "input_rule": e.input_rule,
                                   "agreement_ap": agreement_ap(preds, ref), "faces": sum(counts),
                                   "crowd_faces": crowd_faces, "latency": {}}
    # Latency: for each thread count and size, the detectors take turns (see interleaved_times),
    # so load bursts on a shared machine hit all of them alike.
    for n in tqdm(threads, desc="latency", disable=not progress):
        for e in entries:
            e.set_threads(n)
        for h, w in sizes:
            img = _resize_to(crowd, h, w)
            fns = {e.name + e.engine: (lambda e=e: e.detect(img, e.default_threshold)) for e in entries}
            for key, ms in interleaved_times(fns, warmup, repeat).items():
                rows[key]["latency"][f"{w}x{h}@{n}t"] = {"median_ms": statistics.median(ms), "p90_ms": p90(ms)}
    rows = list(rows.values())
    return {"machine": machine_description(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "photos": len(photos), "reference_faces": sum(len(r) for r in ref), "threads": list(threads),
            "sizes": [f"{w}x{h}" for h, w in sizes], "warmup": warmup, "repeat": repeat, "rows": rows}


def labelled_accuracy(entries: list[Entry], sets: list[tuple[str, Path, Path]], long_side: int = 640,
                      progress: bool = True) -> list[dict]:
    """AP against human labels (protocol of :mod:`featherface.evaluation.labelled`) of every
    detector on every labelled set ``(name, images folder, labels path)``. Each detector gets the
    same image resized to ``long_side`` (then applies its authors' preprocessing), ranks from
    score 0.02, and is scored at its own default threshold for precision/recall. Entries sharing
    a name (one network on two engines) are measured once: their outputs agree to 1e-3 (tested).

    Each AP gets a 95 % interval from image resamples, and, paired on the same resamples, its
    difference to RetinaFace-MobileNet0.25 (:data:`ACCURACY_REFERENCE`; a "greedy NMS" row to
    RetinaFace's greedy row): :func:`featherface.evaluation.labelled.bootstrap_ap`."""
    from tqdm import tqdm

    from ..data.face_labels import read_face_labels
    from ..evaluation.labelled import evaluate_labelled, predict_labelled

    loaded = [(name, images, read_face_labels(labels)) for name, images, labels in sets]
    rows, seen, results = [], set(), {}
    for e in tqdm(entries, desc="human-label AP", disable=not progress):
        if e.name in seen:
            continue
        seen.add(e.name)
        row = {"name": e.name, "engine": e.engine, "default_threshold": e.default_threshold, "sets": {}}
        for set_name, images, labels in loaded:
            preds, missing = predict_labelled(lambda im, e=e: e.detect(im, 0.02), images, labels, long_side)
            r = evaluate_labelled(preds, labels, e.default_threshold)
            row["sets"][set_name] = {**r.to_dict(), "missing_images": len(missing)}
            results[e.name, set_name] = r
        rows.append(row)
    for set_name, _, _ in loaded:
        _add_intervals(rows, set_name, [results[r["name"], set_name] for r in rows])
    return rows


ACCURACY_REFERENCE = "RetinaFace-MNet0.25"


def _add_intervals(rows: list[dict], set_name: str, results: list) -> None:
    """Bootstrap intervals of each row's AP on one set and of its paired difference to the
    reference row (see :func:`labelled_accuracy`), written into ``rows``."""
    samples = bootstrap_ap(results, BOOTSTRAP_RESAMPLES)
    index = {r["name"]: i for i, r in enumerate(rows)}
    for i, row in enumerate(rows):
        m = row["sets"][set_name]
        m["ap_ci95"] = list(interval(samples[:, i]))
        suffix = ", greedy NMS" if row["name"].endswith(", greedy NMS") else ""
        ref = index.get(ACCURACY_REFERENCE + suffix)
        if ref is not None and ref != i:
            m["ap_minus_reference"] = {"reference": rows[ref]["name"], "diff": m["ap"] - rows[ref]["sets"][set_name]["ap"],
                                       "ci95": list(interval(samples[:, i] - samples[:, ref]))}


def render_accuracy_markdown(rows: list[dict], command: str) -> str:
    sets = list(rows[0]["sets"]) if rows else []
    head = "| detector | threshold | " + " | ".join(
        f"{s} AP [95 % interval] | {s} AP − RetinaFace [95 % interval] | {s} AP (>=16 px) | {s} P / R" for s in sets) + " |"
    lines = [f"Accuracy against human labels (`{command}`): VOC AP at IoU 0.5, images resized to a long side "
             "of 640, ranking from score 0.02; precision / recall at each detector's default threshold. "
             f"Intervals: {BOOTSTRAP_TEXT}", "",
             head, "|" + "---|" * (2 + 4 * len(sets))]

    def span(lo_hi: list[float], signed: bool = False) -> str:
        f = "{:+.3f}" if signed else "{:.3f}"
        return "[" + ", ".join(f.format(v) for v in lo_hi) + "]"

    for r in rows:
        cells = []
        for s in sets:
            m = r["sets"][s]
            d = m.get("ap_minus_reference")
            diff = f"{d['diff']:+.3f} {span(d['ci95'], True)}" if d else "—"
            ap = f"{m['ap']:.3f} {span(m['ap_ci95'])}" if "ap_ci95" in m else f"{m['ap']:.3f}"
            cells += [ap, diff, f"{m['ap_16']:.3f}", f"{m['precision']:.2f} / {m['recall']:.2f}"]
        lines.append(f"| {r['name']} | {r['default_threshold']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


BOOTSTRAP_TEXT = (f"2.5th-97.5th percentiles over {BOOTSTRAP_RESAMPLES:,} resamples of the set's images with replacement, the same "
                  "resamples for every detector, so the difference to RetinaFace-MobileNet0.25 (box voting; the "
                  "greedy-NMS rows against its greedy-NMS row) is paired: an interval that excludes 0 is a "
                  "difference another set of this kind and size would likely show too.")


def render_peers_markdown(result: dict, command: str) -> str:
    keys = [f"{s}@{t}t" for t in result["threads"] for s in result["sizes"]]
    head = ["detector", "engine", "params", "file MB"] + [f"{k} median / p90 ms" for k in keys] + \
           ["AP vs V1", f"faces ({result['reference_faces']} by V1)", "crowd faces", "threshold"]
    lines = [
        f"Machine: {result['machine']}  ",
        f"Date: {result['date']}; command: `{command}`  ",
        f"Latency: end to end (preprocess + network + decode + NMS) on the crowd photo resized to each size, "
        f"{result['warmup']} warm-up + {result['repeat']} timed calls each, the detectors taking turns (3 calls per "
        f"turn, the first untimed) so that load bursts hit all alike; PyTorch runs with BatchNorm folded. "
        f"Agreement: {result['photos']} photos, long side 640; "
        f"AP at IoU 0.5 of detections with score >= {AGREEMENT_LOW_THRESHOLD} against V1 (PyTorch) at score >= "
        f"{REFERENCE_THRESHOLD}; face counts at each detector's default threshold.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in result["rows"]:
        lat = [f"{r['latency'][k]['median_ms']:.1f} / {r['latency'][k]['p90_ms']:.1f}" for k in keys]
        lines.append("| " + " | ".join([r["name"], r["engine"], f"{r['parameters']:,}", f"{r['file_mb']:.2f}", *lat,
                                         f"{r['agreement_ap']:.3f}", str(r["faces"]), str(r["crowd_faces"]),
                                         f"{r['default_threshold']:g}"]) + " |")
    lines += ["", "Input rules: " + "; ".join(sorted({f"{r['name']}: {r['input_rule']}" for r in result["rows"]})) + "."]
    return "\n".join(lines) + "\n"


def plot_peers_latency(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib not installed; %s not written", path)
        return
    fig, axes = plt.subplots(1, len(result["threads"]), figsize=(6 * len(result["threads"]), 4.5), squeeze=False)
    pixels = [int(s.split("x")[0]) * int(s.split("x")[1]) / 1e3 for s in result["sizes"]]
    for ax, t in zip(axes[0], result["threads"]):
        for i, r in enumerate(result["rows"]):
            ys = [r["latency"][f"{s}@{t}t"]["median_ms"] for s in result["sizes"]]
            ax.plot(pixels, ys, marker="o", color=plt.cm.tab20(i % 20), linestyle="--" if r["engine"] == "PyTorch" else "-",
                    label=f"{r['name']} ({r['engine']})")
        ax.set_xlabel("input size (kilopixels)")
        ax.set_ylabel("median latency, ms")
        ax.set_title(f"{t} thread(s)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grid_image(crowd: np.ndarray, entries: list[Entry], cols: int = 4) -> np.ndarray:
    """Each detector's detections on ``crowd`` at its default threshold, titled, in a grid."""
    tiles = []
    for e in entries:
        det = e.detect(crowd, e.default_threshold)
        tile = draw_detections(crowd, det.to_list())
        cv2.rectangle(tile, (0, 0), (tile.shape[1], 28), (0, 0, 0), -1)
        cv2.putText(tile, f"{e.name} ({e.engine}): {len(det)} faces", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(crowd))
    rows = [np.concatenate(tiles[i:i + cols], axis=1) for i in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)


def benchmark_with_peers(models: dict[str, str], out: Path, peers_dir: Path, photos_dir: Path, crowd_path: Path,
                         label_sets: list[tuple[str, Path, Path]] = (), accuracy_only: bool = False,
                         threads: tuple[int, ...] = (1, 2), warmup: int = 5, repeat: int = 30,
                         command: str = "featherface benchmark --peers", graphs: dict[str, Path] | None = None) -> dict:
    """Everything ``featherface benchmark --peers`` measures, written to ``out``.

    ``models``: label -> weights of our detectors (V1 first: it is the agreement reference);
    RetinaFace-MobileNet0.25 is added from ``peers_dir`` when its release is there. ``label_sets``:
    ``(name, images folder, labels path)`` for the human-label AP table (``accuracy.md``), written
    first because accuracy does not depend on machine load. ``graphs``: label -> exported ONNX
    file (e.g. Nano INT8), measured on onnxruntime and OpenVINO like our other models."""
    crowd = cv2.imread(str(crowd_path))
    if crowd is None:
        raise FileNotFoundError(f"crowd photo not readable: {crowd_path} (pass --image)")
    s = 640 / max(crowd.shape[:2])
    crowd = cv2.resize(crowd, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
    models = dict(models)
    retina = Path(peers_dir) / "retinaface_mnet0.25_biubug6.pth"
    if retina.is_file():
        models["RetinaFace-MNet0.25"] = str(retina)
    else:
        log.warning("RetinaFace-MobileNet0.25 weights not found at %s; skipped", retina)
    names = {"v1": "FeatherFace V1", "nano": "FeatherFace Nano"}
    models = {names.get(k, k): v for k, v in models.items()}
    entries = _our_entries(models, "torch") + _our_entries(models, "onnxruntime")
    try:
        import openvino  # noqa: F401

        entries += _our_entries(models, "openvino")
        has_openvino = True
    except ModuleNotFoundError:
        log.warning("openvino not installed: no OpenVINO rows (pip install 'featherface[openvino]')")
        has_openvino = False
    for backend in ("onnxruntime", "openvino") if has_openvino else ("onnxruntime",):
        entries += _graph_entries(dict(graphs or {}), backend)
    entries += [_peer_entry(r) for r in load_peers(peers_dir)]
    reference = entries[0]  # V1, PyTorch
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    if label_sets:
        # accuracy only: Nano and RetinaFace with greedy NMS alone (the released RetinaFace code's
        # post-processing), to show what box voting adds to each
        greedy = _our_entries({k: v for k, v in models.items() if k in ("FeatherFace Nano", "RetinaFace-MNet0.25")},
                              "torch", box_voting=False)
        accuracy = labelled_accuracy(entries + greedy, list(label_sets))
        write_json(out / "accuracy.json", {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                           "machine": machine_description(), "command": command, "rows": accuracy})
        (out / "accuracy.md").write_text(render_accuracy_markdown(accuracy, command))
        result["accuracy"] = accuracy
        if accuracy_only:
            return result
    photos = _photos(photos_dir)
    if not photos:
        raise FileNotFoundError(f"no readable photos under {photos_dir}")
    result.update(run_peer_benchmark(entries, photos, crowd, reference, threads=tuple(threads), warmup=warmup, repeat=repeat))
    write_json(out / "peers.json", {k: v for k, v in result.items() if k != "accuracy"})
    (out / "peers.md").write_text(render_peers_markdown(result, command))
    plot_peers_latency(result, out / "peers_latency.png")
    grid = grid_image(crowd, entries)
    atomic_write_image(out / "peers_grid.jpg", cv2.resize(grid, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA), 85)
    return result
