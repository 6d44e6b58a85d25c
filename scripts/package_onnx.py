"""Regenerate the graphs inside the package from ``featherface/weights/nano.pt``.

    python scripts/package_onnx.py POOL [--count 300]

writes ``featherface/weights/nano.onnx`` (fp32, dynamic batch/height/width, the input contract and
recommended threshold in its metadata; checked against PyTorch at two other sizes) and
``nano_int8.onnx`` (static QDQ, per-channel INT8 weights, min/max activation ranges calibrated on
``--count`` photos of the TRAINING pool POOL, never on the benchmark sets). Needs ``[all]``.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from featherface.core.weights import WEIGHTS_DIR
from featherface.export.graph import check_parity, export_onnx
from featherface.models.loading import checkpoint_path, load_any, recommended_threshold
from featherface.export.quantize import calibration_inputs, calibration_photos, quantize_int8


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pool", type=Path, help="training photo pool (calibration photos)")
    ap.add_argument("--count", type=int, default=300, help="calibration photos")
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    a = ap.parse_args()
    model, ckpt = load_any(checkpoint_path("nano"))
    fp32 = export_onnx(model, a.out / "nano.onnx", "nano", score_threshold=recommended_threshold(ckpt))
    diffs = check_parity(model, fp32)
    print("parity vs nano.pt:", ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    if max(diffs.values()) > 1e-4:
        print("parity above 1e-4", file=sys.stderr)
        return 1
    int8 = quantize_int8(fp32, a.out / "nano_int8.onnx", calibration_inputs(calibration_photos(a.pool, a.count)))
    for p in (fp32, int8):
        print(f"{p.name}: {p.stat().st_size / 1e6:.2f} MB, sha256 {hashlib.sha256(p.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
