"""BatchNorm folding keeps the outputs and removes the BatchNorms that follow convolutions."""
import pytest
import torch
from torch import nn

from featherface.models import build_model
from featherface.models.fuse import fold_batchnorm, fold_channel_shuffle


@pytest.mark.parametrize("arch, left", [("v1", 38), ("nano", 2), ("retinaface", 0)])
def test_fold_batchnorm_same_outputs(arch, left):
    torch.manual_seed(0)
    model = build_model(arch).eval()
    for m in model.modules():  # non-trivial statistics and affine parameters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    fused = fold_batchnorm(model)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules()) == left
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > left  # original untouched
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(model(x), fused(x)):
            torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def test_fold_channel_shuffle_is_exact_and_removes_the_shuffle():
    torch.manual_seed(0)
    model = build_model("nano").eval()
    folded = fold_channel_shuffle(model)
    assert isinstance(folded.shuffle, nn.Identity) and not isinstance(model.shuffle, nn.Identity)
    # the permutation really moved weights (a no-op fold would also be "exact")
    assert not torch.equal(folded.heads[0].shared[0].weight, model.heads[0].shared[0].weight)
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(folded(x), model(x)):
            assert float((a - b).abs().max()) < 1e-5
    # V1 has no shuffle-before-head layout: returned unchanged
    v1 = build_model("v1")
    assert all(torch.equal(a, b) for a, b in zip(fold_channel_shuffle(v1).state_dict().values(), v1.state_dict().values()))
