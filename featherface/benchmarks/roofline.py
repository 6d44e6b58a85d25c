"""Achieved compute rate of each detector against this CPU's measured peak.

* **FLOPs** of an ONNX graph at one input shape: every ``Conv`` counts ``2 x out elements x
  (Cin / groups) x kh x kw`` and every ``MatMul``/``Gemm`` ``2 x M x K x N``; all other nodes
  (activations, pooling, resizes, additions) count zero, so this is the multiply-add work. Shapes
  are read from one real run (every counted node's tensors exposed as outputs), which also works
  for graphs whose shapes depend on computed sizes (BiFPN resizes).
* **Peak**: one large dense 3x3 convolution (1x128x112x112, 128 -> 128) on the same engine and
  thread count: what this core reaches when the kernel is ideal.
* **Achieved**: FLOPs / median network time (no pre/post-processing) at 640x480 (or the graph's
  fixed input shape), on onnxruntime and OpenVINO; the faster engine is the model's best backend.
"""
from __future__ import annotations

import logging
import statistics
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .speed import interleaved_times, machine_description

log = logging.getLogger(__name__)

COUNTED = ("Conv", "MatMul", "Gemm")


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def input_shape(path: str | Path, height: int = 480, width: int = 640) -> tuple[int, ...]:
    """The graph's input shape: its fixed dimensions, ``(1, 3, height, width)`` where dynamic."""
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    default = (1, 3, height, width)
    return tuple(d.dim_value if d.dim_value > 0 else default[i] for i, d in enumerate(dims))


def onnx_flops(path: str | Path, shape: tuple[int, ...]) -> int:
    """Multiply-add FLOPs (x2) of the Conv/MatMul/Gemm nodes of ``path`` for an input of ``shape``."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: tuple(i.dims) for i in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in COUNTED]
    wanted = {name for n in nodes for name in list(n.input[:2]) + [n.output[0]] if name and name not in inits}
    have = {o.name for o in graph.output}
    for name in sorted(wanted - have):
        graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every node
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(None, {sess.get_inputs()[0].name: np.zeros(shape, np.float32)})
    shapes = {**inits, **{n: v.shape for n, v in zip(names, values)}}
    total = 0
    for n in nodes:
        if n.op_type == "Conv":
            w, out = shapes[n.input[1]], shapes[n.output[0]]
            total += 2 * int(np.prod(out)) * int(np.prod(w[1:]))  # w: (Cout, Cin / groups, kh, kw)
        else:
            a, b = shapes[n.input[0]], shapes[n.input[1]]
            if n.op_type == "Gemm" and _attr(n, "transB", 0):
                b = b[::-1]
            k = a[-2] if n.op_type == "Gemm" and _attr(n, "transA", 0) else a[-1]
            total += 2 * int(np.prod(shapes[n.output[0]])) * int(k)
    return total


def _peak_model(path: Path) -> tuple[Path, int, tuple[int, ...]]:
    import torch

    conv = torch.nn.Conv2d(128, 128, 3, padding=1)
    shape = (1, 128, 112, 112)
    torch.onnx.export(conv.eval(), torch.zeros(shape), str(path), input_names=["input"], output_names=["output"],
                      opset_version=17, dynamo=False)
    return path, 2 * 128 * 112 * 112 * 128 * 9, shape


def _engines(path: Path, shape: tuple[int, ...], threads: int) -> dict:
    """``{engine: zero-argument network call}`` for onnxruntime and (when installed) OpenVINO."""
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = {"onnxruntime": lambda: sess.run(None, {name: x})}
    try:
        import openvino as ov
    except ImportError:
        return out
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].any_name: ov.PartialShape(list(shape))})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    out["openvino"] = lambda: request.infer({0: x})
    return out


def measure_roofline(models: dict[str, Path], work: Path, threads: int = 1, warmup: int = 3, repeat: int = 20,
                     height: int = 480, width: int = 640) -> dict:
    """FLOPs, per-engine network times and achieved GFLOP/s for each ONNX graph in ``models``,
    and the peak of each engine; all timings interleaved in one run."""
    work.mkdir(parents=True, exist_ok=True)
    peak_path, peak_flops, peak_shape = _peak_model(work / "peak_conv.onnx")
    fns, flops, shapes = {}, {"peak": peak_flops}, {"peak": peak_shape}
    for engine, fn in _engines(peak_path, peak_shape, threads).items():
        fns["peak", engine] = fn
    for name, path in models.items():
        shapes[name] = input_shape(path, height, width)
        flops[name] = onnx_flops(path, shapes[name])
        for engine, fn in _engines(Path(path), shapes[name], threads).items():
            fns[name, engine] = fn
    times = interleaved_times(fns, warmup, repeat)
    rows: dict[str, dict] = {}
    for (name, engine), ts in times.items():
        ms = statistics.median(ts)
        row = rows.setdefault(name, {"flops": flops[name], "input": list(shapes[name]), "ms": {}, "gflops": {}})
        row["ms"][engine] = round(ms, 3)
        row["gflops"][engine] = round(flops[name] / ms / 1e6, 2)
    for row in rows.values():
        row["best"] = max(row["gflops"], key=row["gflops"].get)
    peak = max(rows["peak"]["gflops"].values())
    for name, row in rows.items():
        row["share_of_peak"] = round(row["gflops"][row["best"]] / peak, 3)
    # absolute numbers drift between machines and runs (the same model has measured 2.5x apart
    # on this project's shared CPUs); the shares of peak, measured in one run, are what compare
    return {"threads": threads, "peak_gflops": peak, "rows": rows, "machine": machine_description(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def render_roofline_markdown(result: dict, command: str) -> str:
    lines = [f"Achieved compute vs this CPU's peak ({result['threads']} thread(s); network only). Command: `{command}`", ""]
    if "machine" in result:  # results written before 2026-11-28 lack these
        lines += [f"Machine: {result['machine']}; date: {result['date']}. Absolute times differ between machines and "
                  "runs; compare the shares of peak, measured in one run.", ""]
    lines += ["INT8 graphs: the same operation count per second (GOP/s).", "",
              "| model | input | GFLOPs | best engine | ms | GFLOP/s | share of peak |", "|---|---|---:|---|---:|---:|---:|"]
    for name, r in sorted(result["rows"].items(), key=lambda kv: kv[0] != "peak"):
        best = r["best"]
        lines.append(f"| {name} | {'x'.join(map(str, r['input']))} | {r['flops'] / 1e9:.3f} | {best} | {r['ms'][best]:.2f} | "
                     f"{r['gflops'][best]:.1f} | {100 * r['share_of_peak']:.0f} % |")
    return "\n".join(lines) + "\n"


def plot_roofline(result: dict, path: Path) -> None:
    """Bars: achieved GFLOP/s per model and engine; a line at the measured peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {k: v for k, v in result["rows"].items() if k != "peak"}
    engines = sorted({e for r in rows.values() for e in r["gflops"]})
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(rows), 3.6))
    width = 0.8 / max(1, len(engines))
    for i, e in enumerate(engines):
        xs = [j + i * width for j in range(len(rows))]
        ax.bar(xs, [r["gflops"].get(e, 0) for r in rows.values()], width, label=e)
    ax.axhline(result["peak_gflops"], color="k", ls="--", lw=1)
    ax.text(len(rows) - 0.5, result["peak_gflops"], f"peak (large dense conv) {result['peak_gflops']:.0f}",
            ha="right", va="bottom", fontsize=8)
    ax.set_xticks([j + width * (len(engines) - 1) / 2 for j in range(len(rows))],
                  [f"{k}\n{v['flops'] / 1e9:.2f} GFLOPs" for k, v in rows.items()], fontsize=8)
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title(f"network only, {result['threads']} thread(s)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
