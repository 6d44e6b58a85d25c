"""Parameter counts fixed by ARCHITECTURE.md, per component, and output shapes."""
import pytest
import torch

from featherface.models.anchors import num_anchors
from featherface.models import build_model, parameter_breakdown

V1 = {"backbone": 213_072, "backbone CBAM": 11_528, "BiFPN": 112_606, "BiFPN CBAM": 2_040,
      "SSH (DCN)": 232_965, "channel shuffle": 13_920, "heads": 6_240, "total": 592_371}
NANO = {"backbone": 213_072, "backbone CBAM": 5_732, "BiFPN": 38_662, "BiFPN CBAM": 1_636,
        "SSH (grouped)": 26_496, "channel shuffle": 0, "heads": 58_656, "total": 344_254}


@pytest.mark.parametrize("arch,expected", [("v1", V1), ("nano", NANO)])
def test_parameter_breakdown(arch, expected):
    assert parameter_breakdown(build_model(arch)) == expected


def test_nano_subcomponents():
    m = build_model("nano")
    count = lambda mod: sum(p.numel() for p in mod.parameters())
    assert [count(l) for l in m.bifpn] == [33_859, 4_803]
    assert [count(s) for s in m.ssh] == [8_832] * 3
    assert [count(h) for h in m.heads] == [19_552] * 3


def test_v1_subcomponents():
    m = build_model("v1")
    count = lambda mod: sum(p.numel() for p in mod.parameters())
    assert [count(c) for c in (m.bacbkbone_0_cbam, m.bacbkbone_1_cbam, m.bacbkbone_2_cbam)] == [680, 2_284, 8_564]
    assert count(m.ssh1) == 77_655 and count(m.ssh1_cs) == 4_640
    assert [count(h) for h in (m.ClassHead, m.BboxHead, m.LandmarkHead)] == [780, 1_560, 3_900]


@pytest.mark.parametrize("arch", ["v1", "nano", "retinaface"])
@pytest.mark.parametrize("size", [(640, 640), (312, 512), (97, 131)])
def test_output_shapes(arch, size):
    model = build_model(arch).eval()
    h, w = size
    n = 2 if size == (640, 640) else 1
    with torch.no_grad():
        loc, conf, landmark_deltas = model(torch.randn(n, 3, h, w))
    a = num_anchors(h, w)
    if size == (640, 640):
        assert a == 16_800
    assert loc.shape == (n, a, 4) and conf.shape == (n, a, 2) and landmark_deltas.shape == (n, a, 10)


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet")
