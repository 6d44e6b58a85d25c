#!/usr/bin/env bash
# Reproduce the benchmark tables of the README on this machine (results in benchmarks/results/
# or the folder given as $1). Needs the project installed with the `onnx` and `plot` extras
# (`pip install -e ".[all]"`) and the shared inputs at ../shared (or $FEATHERFACE_SHARED).
# Set POOL=/path/to/pool (the photo pool of ../shared/data) to add Nano INT8, calibrated on
# training photos, to every table.
# Close other CPU-heavy programs first: every number is measured in one run, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results}
SHARED=${FEATHERFACE_SHARED:-../shared}
INT8=()
if [ -n "${POOL:-}" ]; then
  featherface export --model nano -o "$OUT/int8/nano.onnx" --int8 --calibration-images "$POOL" --calibration-count 300
  INT8=(--int8 "$OUT/int8/nano_int8.onnx")
fi
# 1. V1 vs Nano: size, FLOPs, peak memory, latency split into network and post-processing.
featherface benchmark --v1 v1 --nano nano --image "$SHARED/images/crowd_baseball.jpg" --output "$OUT"
# 2. Ours and the detectors people use instead: latency end to end, agreement with V1, grid image.
featherface benchmark --peers "${INT8[@]}" --output "$OUT"
# 3. Accuracy against HUMAN labels on both dev sets, every detector fed the same resized images.
featherface benchmark --peers --accuracy-only "${INT8[@]}" \
    --labels "$SHARED/benchmarks/maskfaces_dev/labels.json" "$SHARED/benchmarks/groupselfies_dev/labels.json" \
    --images "$SHARED/benchmarks/maskfaces_dev/images" "$SHARED/benchmarks/groupselfies_dev/images" --output "$OUT"
# 4. Achieved compute of every model against this CPU's measured peak (network only, 1 thread).
featherface benchmark --roofline --threads 1 "${INT8[@]}" --output "$OUT"
