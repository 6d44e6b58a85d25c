"""``featherface benchmark`` (V1 vs Nano) end to end with few repeats; timings are not asserted."""
import json

from featherface.benchmarks.speed import interleaved_times
from featherface.cli import main
from tests.conftest import shared_file

import pytest

pytestmark = pytest.mark.benchmark


def test_interleaved_times_counts_and_order():
    calls = []
    times = interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, repeat=4)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4}
    assert calls[:2] == ["a", "b"]  # warm-up
    assert calls[2:8] == ["a"] * 3 + ["b"] * 3  # turns of 3 calls, the first untimed
    assert len(calls) == 2 + 2 * 6


def test_benchmark_v1_vs_nano(tmp_path, v1_checkpoint):
    out = tmp_path / "bench"
    rc = main(["benchmark", "--v1", str(v1_checkpoint), "--nano", "nano", "--threads", "1", "--warmup", "0",
               "--repeat", "1", "--image", str(shared_file("images/crowd_baseball.jpg")), "--output", str(out)])
    assert rc == 0
    res = json.loads((out / "benchmark.json").read_text())
    assert res["models"]["v1"]["parameters"] == 592_371 and res["models"]["nano"]["parameters"] == 344_254
    from featherface.models.loading import load_any, recommended_threshold, checkpoint_path

    assert res["models"]["nano"]["score_threshold"] == recommended_threshold(load_any(checkpoint_path("nano"))[1])
    rows = {(t["model"], t["backend"], t["size"]) for t in res["timings"]}
    assert len(rows) == 2 * 2 * 2  # models x backends x sizes
    for m in res["models"].values():
        assert all(v > 0 for v in m["peak_forward_mb"].values())
    v1_faces = [t["faces"] for t in res["timings"] if t["model"] == "v1"]
    assert min(v1_faces) >= 20
    md = (out / "benchmark.md").read_text()
    assert "Ratios nano / v1" in md and "machine:" in md
    assert (out / "latency.png").is_file()
