import torch

from featherface.models.backbone import MobileNetV1, load_imagenet_weights
from tests.conftest import shared_file


def test_feature_strides():
    feats = MobileNetV1().eval()(torch.zeros(1, 3, 97, 131))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 13, 17), (128, 7, 9), (256, 4, 5)]


def test_imagenet_weights_load_strictly():
    path = shared_file("weights/mobilenet0.25_imagenet_pretrain.tar")
    net = MobileNetV1()
    report = load_imagenet_weights(net, path)
    assert report["parameters_loaded"] == 213_072
    assert report["tensors_dropped"] == 2  # fc.weight, fc.bias
    raw = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(net.stage3[1][3].weight, raw["module.stage3.1.3.weight"])
