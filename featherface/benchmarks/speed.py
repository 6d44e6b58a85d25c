"""Side-by-side speed/size/memory measurements of V1 and Nano (``featherface benchmark``).

Everything is measured in ONE run, on this machine, so ratios are comparable even when absolute
numbers drift (shared, noisy machines). Latency is split into network time (the runner call on a
preprocessed batch of one) and post-processing time (threshold, decode, NMS, rescale), measured
on a real photograph when one is given. Peak memory is measured in a fresh process per model and size
(PyTorch, one thread): how much the peak resident set grows during one forward pass, and the
process's peak resident set (interpreter, torch and weights included).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from ..core.detector import preprocess
from ..models.loading import load_any, recommended_threshold, checkpoint_path
from ..core.postprocess import PostProcessConfig, postprocess_image
from ..core.runners import OnnxRunner
from ..export.torch_runner import TorchRunner

log = logging.getLogger(__name__)

SIZES = ((640, 640), (480, 640))  # (H, W)


@dataclass
class Timing:
    model: str
    backend: str
    threads: int
    size: str
    net_median_ms: float
    net_p90_ms: float
    post_median_ms: float
    post_p90_ms: float
    total_median_ms: float
    faces: int


def interleaved_times(fns: dict[str, Callable[[], object]], warmup: int, repeat: int, per_turn: int = 3) -> dict[str, list[float]]:
    """Wall-clock milliseconds of ``repeat`` calls of every function, taken in turns after
    ``warmup`` untimed calls of each: each turn makes ``per_turn`` consecutive calls of one
    function and times all but the first (which absorbs the switch: thread pools of the previous
    engine still spinning, cold caches). Drift and bursts of load on a shared machine thus fall on
    all contenders alike and their ratios stay meaningful."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    timed = max(1, per_turn - 1)
    while any(len(v) < repeat for v in out.values()):
        for k, fn in fns.items():
            fn()
            for _ in range(min(timed, repeat - len(out[k]))):
                t0 = time.perf_counter()
                fn()
                out[k].append((time.perf_counter() - t0) * 1e3)
    return out


def p90(xs: list[float]) -> float:
    return float(np.percentile(xs, 90))


def peak_forward_memory(weights: Path, height: int, width: int) -> tuple[int, int]:
    """Peak memory of one forward pass, measured in a fresh process (Linux ``/proc``): returns
    ``(peak resident set during the pass minus the resident set just before it, that peak)`` in
    bytes. The first number is what the pass itself needed (activations, workspaces)."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "featherface.benchmarks.memory", str(weights), str(height), str(width)],
                         check=True, capture_output=True, text=True).stdout.split()
    base, peak = (int(v) for v in out[-2:])
    return peak - base, peak


def machine_description() -> str:
    """CPU model, its widest vector ISA, CPU count and library versions. The ISA is there because
    hosts with the same model name ("AMD EPYC") differ in it, and with it in speed (2-3x here)."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
    except OSError:
        info = {}
    info = {k.strip(): v.strip() for k, v in info.items()}  # the last processor's entries; all alike
    cpu = info.get("model name", platform.processor() or "unknown CPU")
    flags = set(info.get("flags", "").split())
    isa = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")) if flag in flags), "")
    import onnxruntime

    cpu = f"{cpu} ({isa})" if isa else cpu
    return (f"{cpu}; {os.cpu_count()} logical CPUs visible; Python {platform.python_version()}; "
            f"torch {torch.__version__}; onnxruntime {onnxruntime.__version__}; {platform.system()} {platform.release()}")


def _sample_image(path: Path | None, h: int, w: int) -> np.ndarray:
    if path is not None and path.is_file():
        img = cv2.imread(str(path))
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def benchmark_models(models: dict[str, str], out_dir: Path, image: Path | None = None, threads=(1, 2),
                     backends=("torch", "onnxruntime"), sizes=SIZES, warmup: int = 5, repeat: int = 30,
                     command: str = "featherface benchmark") -> dict:
    """Measure every model in ``models`` (label -> weights name/path) and write
    ``benchmark.md``, ``benchmark.json`` and ``latency.png`` into ``out_dir``."""
    from ..export.graph import export_onnx
    from ..models import parameter_breakdown
    from ..models.profiling import count_flops


    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="featherface_bench_"))
    static, timings, loaded = {}, [], {}
    saved_threads = torch.get_num_threads()
    for label, spec in models.items():
        path = checkpoint_path(spec)
        model, ckpt = load_any(path)
        onnx_path = export_onnx(model, tmp / f"{label}.onnx", ckpt.get("arch", "?"))
        # Each model post-processes at its own recommended threshold (Nano's is below 0.5).
        cfg = PostProcessConfig(score_threshold=recommended_threshold(ckpt) or 0.5)
        loaded[label] = (model, onnx_path, cfg)
        static[label] = {
            "arch": ckpt.get("arch", "?"),
            "weights": Path(path).name,  # the file, not where it lay on the measuring machine
            "parameters": parameter_breakdown(model)["total"],
            "gflops_640": count_flops(model, 640, 640) / 1e9,
            "checkpoint_mb": path.stat().st_size / 2**20,
            "onnx_mb": onnx_path.stat().st_size / 2**20,
            "score_threshold": cfg.score_threshold,
            "peak_forward_mb": {}, "peak_rss_mb": {},
        }
        for h, w in sizes:
            extra, total = peak_forward_memory(path, h, w)
            static[label]["peak_forward_mb"][f"{w}x{h}"] = extra / 2**20
            static[label]["peak_rss_mb"][f"{w}x{h}"] = total / 2**20
    for backend in backends:
        for t in threads:
            torch.set_num_threads(t)
            runners = {label: TorchRunner(m) if backend == "torch" else OnnxRunner(o, num_threads=t)
                       for label, (m, o, _) in loaded.items()}
            for h, w in sizes:
                x, scale = preprocess(_sample_image(image, h, w), long_side=None)
                batch = x[None]
                net = interleaved_times({k: (lambda r=r: r(batch)) for k, r in runners.items()}, warmup, repeat)
                outs = {k: r(batch) for k, r in runners.items()}
                post_fns = {k: (lambda o=o, c=loaded[k][2]: postprocess_image(o.image(0), (h, w), scale, c))
                            for k, o in outs.items()}
                post = interleaved_times(post_fns, warmup, repeat)
                for label in runners:
                    faces = len(post_fns[label]())
                    timings.append(Timing(label, backend, t, f"{w}x{h}", statistics.median(net[label]), p90(net[label]),
                                          statistics.median(post[label]), p90(post[label]),
                                          statistics.median(net[label]) + statistics.median(post[label]), faces))
                    log.info("%s %s %d thread(s) %dx%d: net %.1f ms, post %.2f ms", label, backend, t, w, h,
                             timings[-1].net_median_ms, timings[-1].post_median_ms)
    torch.set_num_threads(saved_threads)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine_description(),
              "command": command,
              "warmup": warmup, "repeat": repeat, "image": str(image) if image else "random pixels",
              "models": static, "timings": [asdict(t) for t in timings]}
    (out_dir / "benchmark.json").write_text(json.dumps(result, indent=1) + "\n")
    (out_dir / "benchmark.md").write_text(render_markdown(result))
    plot_latency(result, out_dir / "latency.png")
    return result


def _ratio_rows(result: dict, num: str, den: str) -> list[str]:
    rows = []
    by_key = {(t["model"], t["backend"], t["threads"], t["size"]): t for t in result["timings"]}
    for (m, b, th, s), t in by_key.items():
        if m != num or (den, b, th, s) not in by_key:
            continue
        d = by_key[(den, b, th, s)]
        rows.append(f"| {b} | {th} | {s} | {t['net_median_ms'] / d['net_median_ms']:.2f} | "
                    f"{t['total_median_ms'] / d['total_median_ms']:.2f} |")
    return rows


def render_markdown(result: dict) -> str:
    lines = ["# FeatherFace benchmark", "", f"- date: {result['date']}", f"- machine: {result['machine']}",
             f"- command: `{result['command']}`", f"- image: {result['image']} (resized to each size), "
             "score threshold: " + ", ".join(f"{k} {v.get('score_threshold', 0.5):g}" for k, v in result["models"].items())
             + f" (each model's recommended one); PyTorch runs with BatchNorm folded into the convolutions; "
             f"{result['warmup']} warm-up calls, then {result['repeat']} timed calls per row, the models taking turns "
             "(3 calls per turn, the first untimed) so that load bursts on a shared machine hit all of them alike", "",
             "## Size and compute", "",
             "| model | parameters | GFLOPs @640x640 | checkpoint MB | ONNX MB | forward-pass peak memory MB (per size) | process peak RSS MB |",
             "|---|---:|---:|---:|---:|---|---|"]
    for label, s in result["models"].items():
        mem = ", ".join(f"{k}: {v:.1f}" for k, v in s["peak_forward_mb"].items())
        rss = ", ".join(f"{k}: {v:.0f}" for k, v in s["peak_rss_mb"].items())
        lines.append(f"| {label} | {s['parameters']:,} | {s['gflops_640']:.3f} | {s['checkpoint_mb']:.2f} | {s['onnx_mb']:.2f} | {mem} | {rss} |")
    lines += ["", "## Latency (batch 1, milliseconds)", "",
              "| model | backend | threads | size (WxH) | network median | network p90 | post median | post p90 | total median | faces |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for t in result["timings"]:
        lines.append(f"| {t['model']} | {t['backend']} | {t['threads']} | {t['size']} | {t['net_median_ms']:.1f} | "
                     f"{t['net_p90_ms']:.1f} | {t['post_median_ms']:.2f} | {t['post_p90_ms']:.2f} | {t['total_median_ms']:.1f} | {t['faces']} |")
    labels = list(result["models"])
    if len(labels) >= 2:
        num, den = labels[1], labels[0]
        sn, sd = result["models"][num], result["models"][den]
        lines += ["", f"## Ratios {num} / {den} (below 1 means {num} is smaller or faster)", "",
                  f"- parameters: {sn['parameters'] / sd['parameters']:.3f}; FLOPs: {sn['gflops_640'] / sd['gflops_640']:.3f}; "
                  f"ONNX file: {sn['onnx_mb'] / sd['onnx_mb']:.3f}",
                  "- forward-pass peak memory: " + ", ".join(f"{k}: {sn['peak_forward_mb'][k] / sd['peak_forward_mb'][k]:.3f}"
                                                       for k in sn["peak_forward_mb"]), "",
                  "| backend | threads | size | network time ratio | total time ratio |", "|---|---:|---|---:|---:|"]
        lines += _ratio_rows(result, num, den)
    return "\n".join(lines) + "\n"


def plot_latency(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["timings"]
    keys = sorted({(t["backend"], t["threads"], t["size"]) for t in rows})
    models = list(result["models"])
    fig, ax = plt.subplots(figsize=(max(6, len(keys) * 1.1), 4))
    width = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        vals = [next((t["net_median_ms"] for t in rows if t["model"] == m and (t["backend"], t["threads"], t["size"]) == k), np.nan) for k in keys]
        post = [next((t["post_median_ms"] for t in rows if t["model"] == m and (t["backend"], t["threads"], t["size"]) == k), np.nan) for k in keys]
        xs = np.arange(len(keys)) + i * width
        ax.bar(xs, vals, width, label=f"{m} network")
        ax.bar(xs, post, width, bottom=vals, label=f"{m} post-processing", alpha=0.5)
    ax.set_xticks(np.arange(len(keys)) + width * (len(models) - 1) / 2)
    ax.set_xticklabels([f"{b}\n{t} thr\n{s}" for b, t, s in keys], fontsize=7)
    ax.set_ylabel("median latency (ms)")
    ax.set_title("FeatherFace latency, batch 1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
