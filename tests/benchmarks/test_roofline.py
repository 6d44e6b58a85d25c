"""Roofline measurement: FLOPs of ONNX graphs counted by hand-checkable rules, agreeing with
PyTorch's FLOP counter on our models; a small end-to-end measurement has the promised fields."""
import pytest
import torch

from featherface.benchmarks.roofline import input_shape, measure_roofline, onnx_flops
from featherface.export.graph import export_onnx
from featherface.models import build_model
from featherface.models.profiling import count_flops

pytest.importorskip("onnxruntime")


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        y = self.dw(torch.relu(self.conv(x)))
        return self.fc(y.mean(dim=(2, 3)))


def _export(model, path, shape):
    torch.onnx.export(model.eval(), torch.zeros(shape), str(path), input_names=["input"], opset_version=17, dynamo=False,
                      dynamic_axes={"input": {2: "h", 3: "w"}})
    return path


def test_flops_by_hand(tmp_path):
    path = _export(Tiny(), tmp_path / "tiny.onnx", (1, 3, 8, 8))
    conv = 2 * (8 * 4 * 4) * (3 * 3 * 3)  # 2 x outputs x (Cin x kh x kw)
    depthwise = 2 * (8 * 4 * 4) * (1 * 3 * 3)  # groups = 8: one input channel per output
    fc = 2 * 5 * 8
    assert onnx_flops(path, (1, 3, 8, 8)) == conv + depthwise + fc
    # dynamic spatial axes: the default 640x480 shape is used, fixed ones are kept
    assert input_shape(path) == (1, 3, 480, 640)


def test_flops_agree_with_pytorch_counter(tmp_path):
    model = build_model("nano").eval()
    path = export_onnx(model, tmp_path / "nano.onnx", "nano", 96, 128)
    assert onnx_flops(path, (1, 3, 96, 128)) == count_flops(model, 96, 128)


def test_measure_roofline_fields(tmp_path):
    path = _export(Tiny(), tmp_path / "tiny.onnx", (1, 3, 8, 8))
    result = measure_roofline({"tiny": path}, tmp_path / "work", threads=1, warmup=1, repeat=2, height=32, width=32)
    assert result["peak_gflops"] > 0
    row = result["rows"]["tiny"]
    assert row["input"] == [1, 3, 32, 32] and row["flops"] == onnx_flops(path, (1, 3, 32, 32))
    assert row["best"] in row["gflops"] and 0 < row["share_of_peak"]
    assert result["rows"]["peak"]["share_of_peak"] == 1.0
    from featherface.benchmarks.roofline import render_roofline_markdown

    md = render_roofline_markdown(result, "cmd")  # which machine and when: absolute times drift between hosts
    assert f"Machine: {result['machine']}; date: {result['date']}" in md and "| tiny | 1x3x32x32 |" in md
