"""WiderFaceDataset and the collate function: items follow the documented contract."""
import numpy as np
import torch

from featherface.data.dataset import WiderFaceDataset, collate


def test_wider_dataset_items_and_determinism(tiny_dataset):
    root, labels = tiny_dataset
    ds = WiderFaceDataset(root, labels, image_size=96, seed=3, repeats=2)
    assert len(ds) == 8
    x, t = ds[5]
    assert x.shape == (3, 96, 96) and x.dtype == torch.float32
    k = len(t["boxes"])
    assert t["boxes"].shape == (k, 4) and t["landmarks"].shape == (k, 10) and t["has_landmarks"].dtype == torch.bool
    assert ((t["boxes"] >= 0) & (t["boxes"] <= 1)).all()
    x2, t2 = ds[5]
    assert torch.equal(x, x2) and torch.equal(t["boxes"], t2["boxes"])  # same (seed, epoch, index)
    ds.set_epoch(1)
    x3, _ = ds[5]
    assert not torch.equal(x, x3)  # a new epoch draws new augmentations
    images, targets = collate([ds[i] for i in range(3)])
    assert images.shape == (3, 3, 96, 96) and len(targets) == 3


def test_faces_without_landmarks_are_flagged(tiny_dataset):
    root, labels = tiny_dataset
    ds = WiderFaceDataset(root, labels, image_size=96, seed=0)
    flags = np.concatenate([ds[i][1]["has_landmarks"].numpy() for i in range(len(ds))])
    assert flags.any() and not flags.all()
