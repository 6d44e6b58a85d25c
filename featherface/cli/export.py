"""``featherface export``: ONNX export with a parity check against PyTorch."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..export.quantize import DEFAULT_KEEP_FP32
from .common import int_at_least


def cmd_export(args: argparse.Namespace) -> int:
    from ..apps.batch import check_writable
    from ..core.runners import require

    require("torch", "torch")
    from ..export.graph import DECODED_OUTPUTS, RAW_OUTPUTS, check_parity, export_onnx
    from ..models.loading import checkpoint_path, load_any, recommended_threshold

    check_writable(args.output.parent)
    model, ckpt = load_any(checkpoint_path(args.model))
    arch = ckpt.get("arch", "?")
    h, w = args.size
    path = export_onnx(model, args.output, arch, h, w, decode=args.decode, opset=args.opset,
                       score_threshold=recommended_threshold(ckpt))
    print(f"wrote {path} ({arch}, exported at {h}x{w}, outputs: {', '.join(DECODED_OUTPUTS if args.decode else RAW_OUTPUTS)})")
    if args.int8:

        from ..export.quantize import calibration_inputs, calibration_photos, quantize_int8

        if not args.calibration_images:
            raise ValueError("--int8 needs --calibration-images (training photos; never the benchmark sets)")
        photos = calibration_photos(args.calibration_images, args.calibration_count)
        fp32 = path
        path = args.output.with_name(args.output.stem + "_int8.onnx")
        keep = tuple(args.int8_keep_fp32)
        quantize_int8(fp32, path, calibration_inputs(photos), method=args.calibration_method, keep_fp32=keep)
        print(f"wrote {path} (INT8 QDQ convolutions, per-channel weights, {args.calibration_method} calibration on "
              f"{len(photos)} photos of {args.calibration_images}; kept fp32: {', '.join(keep) or 'nothing'})")
        return 0
    if not args.no_check:
        sizes = ((h + 32 * 3 + 8, w - 64 - 4 if w > 128 else w + 36), (max(32, h // 2 + 1), max(32, w // 2 - 3)))
        diffs = check_parity(model, path, sizes=sizes, batch=2)
        tol = args.tolerance
        print("parity vs PyTorch (batch 2, sizes " + ", ".join(f"{a}x{b}" for a, b in sizes) + "): "
              + ", ".join(f"{k} max|diff| {v:.2e}" for k, v in diffs.items()))
        if max(diffs.values()) > tol:
            print(f"parity FAILED: tolerance {tol}")
            return 1
        print(f"parity OK (tolerance {tol})")
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("export", help="export to ONNX (dynamic batch/height/width) and check parity with PyTorch")
    p.add_argument("--model", default="nano", help="'nano', 'v1', a checkpoint, an official V1 or RetinaFace .pth")
    p.add_argument("--output", "-o", type=Path, required=True, help="output .onnx path")
    p.add_argument("--size", type=int_at_least(32), nargs=2, default=(640, 640), metavar=("H", "W"),
                   help="export size (each >= 32)")
    p.add_argument("--decode", action="store_true", help="decode boxes/landmarks and softmax scores inside the graph")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument("--no-check", action="store_true", help="skip the parity check")
    p.add_argument("--tolerance", type=float, default=1e-3, help="max abs difference allowed by the parity check")
    p.add_argument("--int8", action="store_true",
                   help="also write <output>_int8.onnx: static INT8 (QDQ, per-channel) for onnxruntime and OpenVINO")
    p.add_argument("--calibration-images", type=Path, help="--int8: folder of TRAINING photos for the activation ranges")
    p.add_argument("--calibration-count", type=int, default=100, help="--int8: photos used (default: %(default)s)")
    p.add_argument("--calibration-method", choices=["minmax", "percentile", "entropy"], default="minmax",
                   help="--int8: how activation ranges are set (default: %(default)s)")
    p.add_argument("--int8-keep-fp32", nargs="*", default=list(DEFAULT_KEEP_FP32), metavar="NAME_PART",
                   help="--int8: ONNX nodes whose name contains one of these stay fp32 (default: the first backbone "
                        "stage, where INT8 costs the most accuracy; none: pass the flag alone)")
    p.set_defaults(func=cmd_export)
