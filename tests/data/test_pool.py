"""The photo pool: source weights, box convention, and augmentations that move human boxes with
the pixels (crops, zoom-out, mosaics, mirror)."""
import json

import cv2
import numpy as np
import pytest

from featherface.data.pool import BoxConvention, PoolDataset, read_pool


@pytest.fixture
def pool(tmp_path):
    """Two sources; every photo is black with one white 'face' whose human box is labelled."""
    labels = {}
    rng = np.random.default_rng(0)
    for src, n in (("group", 3), ("crops", 4)):
        for k in range(n):
            img = np.zeros((200, 300, 3), np.uint8)
            x, y = int(rng.integers(20, 200)), int(rng.integers(20, 100))
            img[y:y + 60, x:x + 60] = 255
            rel = f"{src}/p{k}.jpg"
            (tmp_path / src).mkdir(exist_ok=True)
            cv2.imwrite(str(tmp_path / rel), img)
            labels[rel] = {"boxes": [[x, y, x + 60, y + 60]], "landmarks": [None]}
    (tmp_path / "labels.json").write_text(json.dumps({"images": labels}))
    return tmp_path


def test_source_weights_repeat_and_thin(pool):
    entries, human = read_pool(pool, pool / "labels.json", {"group": 2.0, "crops": 0.5})
    assert sum(e.startswith("group/") for e in entries) == 6
    assert sum(e.startswith("crops/") for e in entries) == 2
    assert len(human) == 7


def test_box_convention_hand_computed():
    conv = BoxConvention(w_scale=0.5, h_scale=2.0, dx=0.1, dy=-0.1)
    out = conv.apply(np.array([[0, 0, 100, 50]], np.float32))
    # centre (50, 25) + (10, -5) = (60, 20); size (50, 100)
    np.testing.assert_allclose(out, [[35, -30, 85, 70]])


@pytest.mark.parametrize("mosaic, zoom", [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0)])
def test_boxes_follow_the_pixels(pool, mosaic, zoom):
    entries, human = read_pool(pool, pool / "labels.json", {})
    identity = BoxConvention(1.0, 1.0, 0.0, 0.0)
    ds = PoolDataset(pool, entries, human, image_size=128, seed=3, mosaic_prob=mosaic, zoom_out_prob=zoom, convention=identity)
    seen = 0
    for i in range(len(ds)):
        x, t = ds[i]
        assert tuple(x.shape) == (3, 128, 128) and str(x.dtype) == "torch.float32"
        assert t["online"] and t["boxes"].shape[1] == 4
        assert ((t["boxes"] >= 0) & (t["boxes"] <= 1)).all()
        gray = x.numpy().mean(axis=0) + 115  # undo roughly the mean subtraction
        for b in (t["boxes"].numpy() * 128).round().astype(int):
            x1, y1, x2, y2 = b
            if min(x2 - x1, y2 - y1) < 6:
                continue
            inside = gray[y1 + 1:y2 - 1, x1 + 1:x2 - 1].mean()
            assert inside > gray.mean() + 20, (i, b)  # the white square is where its box says
            seen += 1
    assert seen >= 3
    # the same (seed, epoch, index) gives the same sample
    np.testing.assert_array_equal(ds[2][0].numpy(), ds[2][0].numpy())
