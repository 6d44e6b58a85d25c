"""The photo pool: source weights, box convention, and augmentations that move human boxes with
the pixels (crops, zoom-out, mosaics, mirror)."""
import json

import cv2
import numpy as np
import pytest

from featherface.data.pool import (BoxConvention, PoolDataset, held_out_photos, measure_convention, no_face_image, read_pool,
                                   read_pool_labels)


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
    identity = {"w_scale": 1.0, "h_scale": 1.0, "dx": 0.0, "dy": 0.0}
    (tmp_path / "labels_identity.json").write_text(json.dumps({"images": labels, "box_convention": identity}))
    return tmp_path


def test_source_weights_repeat_and_thin(pool):
    entries, human = read_pool(pool, pool / "labels.json", {"group": 2.0, "crops": 0.5})
    assert sum(e.startswith("group/") for e in entries) == 6
    assert sum(e.startswith("crops/") for e in entries) == 2
    assert len(human) == 7


def test_the_landmark_dev_set_is_never_sampled(tmp_path):
    """The photos of featherface/data/landmark_dev.txt are in the pool folder but not in its samples."""
    held = sorted(held_out_photos())
    assert len(held) == 1156 and all(h.startswith("caltech_webfaces/") for h in held)
    kept = "caltech_webfaces/Caltech_WebFaces/not_held.jpg"
    for rel in (held[0], held[-1], kept):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / rel), np.zeros((8, 8, 3), np.uint8))
    entries, _ = read_pool(tmp_path, None, {})
    assert entries == [kept]


def test_box_convention_hand_computed():
    conv = BoxConvention(w_scale=0.5, h_scale=2.0, dx=0.1, dy=-0.1)
    out = conv.apply(np.array([[0, 0, 100, 50]], np.float32))
    # centre (50, 25) + (10, -5) = (60, 20); size (50, 100)
    np.testing.assert_allclose(out, [[35, -30, 85, 70]])


def test_read_pool_labels_conventions_scores_and_precedence(tmp_path):
    human = {"a.jpg": {"boxes": [[0, 0, 100, 50]], "landmarks": [None]}}
    detector = {"box_convention": {"w_scale": 0.5, "h_scale": 2.0, "dx": 0.1, "dy": -0.1, "pairs": 9},
                "score_min": 0.3,
                "images": {"a.jpg": {"boxes": [[5, 5, 50, 50]], "scores": [0.9]},
                           "b.jpg": {"boxes": [[0, 0, 100, 50], [0, 0, 10, 10]], "scores": [0.8, 0.4]},
                           "c.jpg": {"boxes": [], "scores": []}}}
    (tmp_path / "human.json").write_text(json.dumps({"images": human}))
    (tmp_path / "det.json").write_text(json.dumps(detector))
    boxes, summary = read_pool_labels([tmp_path / "human.json", tmp_path / "det.json"], min_score=0.5)
    # a.jpg: the human file comes first and wins; its boxes get the default (human) map
    np.testing.assert_allclose(boxes["a.jpg"], BoxConvention().apply(np.array([[0, 0, 100, 50]], np.float32)))
    # b.jpg: the detector's map (hand-computed in test_box_convention_hand_computed); the 0.4 box dropped
    np.testing.assert_allclose(boxes["b.jpg"], [[35, -30, 85, 70]])
    assert boxes["c.jpg"].shape == (0, 4)
    assert [(s["photos"], s["faces"]) for s in summary] == [(1, 1), (2, 1)]
    assert summary[1]["convention"] == {"w_scale": 0.5, "h_scale": 2.0, "dx": 0.1, "dy": -0.1}
    # a lower minimum score keeps the second box
    assert len(read_pool_labels(tmp_path / "det.json", min_score=0.3)[0]["b.jpg"]) == 2


def test_measure_convention_recovers_a_known_map():
    rng = np.random.default_rng(1)
    truth = BoxConvention(w_scale=0.85, h_scale=1.06, dx=0.03, dy=-0.02)
    others, refs = [], []
    for _ in range(20):
        xy = rng.uniform(0, 500, (3, 2)).astype(np.float32)
        o = np.concatenate([xy, xy + rng.uniform(20, 80, (3, 2)).astype(np.float32)], axis=1)
        r = truth.apply(o)[::-1]  # order must not matter: pairs are matched by IoU
        others.append(o)
        refs.append(np.concatenate([r, [[900, 900, 950, 950]]]))  # a reference box nothing matches
    # one wrong but overlapping pair (IoU >= 0.5, twice as wide): the medians ignore it
    others.append(np.array([[0, 0, 100, 100]], np.float32))
    refs.append(np.array([[0, 0, 200, 100]], np.float32))
    conv, pairs = measure_convention(refs, others)
    assert pairs == 61
    np.testing.assert_allclose([conv.w_scale, conv.h_scale, conv.dx, conv.dy], [0.85, 1.06, 0.03, -0.02], atol=2e-3)
    with pytest.raises(ValueError, match="no box pairs"):
        measure_convention([np.zeros((0, 4))], [np.array([[0, 0, 10, 10]])])


@pytest.mark.parametrize("mosaic, zoom, cap", [(0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 0.5), (1.0, 0.0, 0.5)])
def test_boxes_follow_the_pixels(pool, mosaic, zoom, cap):
    entries, human = read_pool(pool, pool / "labels_identity.json", {})
    ds = PoolDataset(pool, entries, human, image_size=128, seed=3, mosaic_prob=mosaic, zoom_out_prob=zoom,
                     max_upscale=cap)
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


def test_max_upscale_caps_the_magnification(tmp_path):
    """A 50 x 80 photo with a 20 px face, views of 128 px: without the cap every crop magnifies it
    2.56-8.5x (crop side 50..15 px); with max_upscale = 2 no face is wider than 2 x 20 px (+ 1 px of rounding)."""
    img = np.zeros((50, 80, 3), np.uint8)
    img[15:35, 30:50] = 255
    (tmp_path / "small").mkdir()
    cv2.imwrite(str(tmp_path / "small" / "p.jpg"), img)
    labels = {"images": {"small/p.jpg": {"boxes": [[30, 15, 50, 35]], "landmarks": [None]}},
              "box_convention": {"w_scale": 1.0, "h_scale": 1.0, "dx": 0.0, "dy": 0.0}}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    entries, human = read_pool(tmp_path, tmp_path / "labels.json", {"small": 40})

    def widths(cap):
        ds = PoolDataset(tmp_path, entries, human, image_size=128, seed=0, mosaic_prob=0.0, zoom_out_prob=0.0,
                         max_upscale=cap)
        return np.concatenate([(t["boxes"][:, 2] - t["boxes"][:, 0]).numpy() * 128 for _, t in (ds[i] for i in range(len(ds)))])

    uncapped, capped = widths(0.0), widths(2.0)
    assert np.median(uncapped) > 45  # at least 128 / 50 = 2.56x
    assert len(capped) == len(entries)  # the face is in every view: the photo fits in the window
    assert capped.max() <= 41 and capped.min() >= 20


def test_painted_masks_cover_the_lower_face_only(pool):
    """mask_prob 1: every labelled face (a white 60 px square) gets a mask over its lower part; the
    upper part and the rest of the photo keep their pixels, and the boxes do not move. mask_prob 0
    loads the photo as it is."""
    entries, human = read_pool(pool, pool / "labels_identity.json", {})
    plain = PoolDataset(pool, entries, human, image_size=128)._load(0, np.random.default_rng(0))
    masked = PoolDataset(pool, entries, human, image_size=128, mask_prob=1.0)._load(0, np.random.default_rng(0))
    np.testing.assert_array_equal(plain.image, cv2.imread(str(pool / entries[0])))
    np.testing.assert_array_equal(masked.boxes, plain.boxes)
    x1, y1, x2, y2 = plain.boxes[0].astype(int)
    diff = np.abs(masked.image.astype(int) - plain.image.astype(int)).max(axis=2)
    assert diff[y1:y1 + 18, x1:x2].max() == 0  # brow and eyes: the box's top 30 %
    assert diff[y1 + 33:y1 + 55, x1 + 10:x2 - 10].min() > 5  # nose to chin, inside the cheeks: painted
    outside = np.ones_like(diff, bool)
    outside[y1 - 5:y2 + 10, x1 - 10:x2 + 10] = False
    assert diff[outside].max() == 0
    varied = PoolDataset(pool, entries, human, image_size=128, mask_prob=1.0, mask_style="varied")
    assert (varied._load(0, np.random.default_rng(0)).image != masked.image).any()  # the style reaches the painter


def test_occluders_reach_the_labelled_faces_only(pool):
    """occlude_prob 1: pixels change around each labelled face (inside its box among them), the
    boxes do not move; occlude_prob 0 loads the photo as it is."""
    entries, human = read_pool(pool, pool / "labels_identity.json", {})
    plain = PoolDataset(pool, entries, human, image_size=128)._load(0, np.random.default_rng(0))
    covered = PoolDataset(pool, entries, human, image_size=128, occlude_prob=1.0)._load(0, np.random.default_rng(0))
    np.testing.assert_array_equal(covered.boxes, plain.boxes)
    x1, y1, x2, y2 = plain.boxes[0].astype(int)
    diff = np.abs(covered.image.astype(int) - plain.image.astype(int)).max(axis=2)
    assert 0.05 < (diff[y1:y2, x1:x2] > 0).mean() < 0.75  # part of the face, not all of it
    near = np.zeros_like(diff, bool)
    w, h = x2 - x1, y2 - y1
    near[max(0, y1 - 2 * h):y2 + 2 * h, max(0, x1 - 2 * w):x2 + 2 * w] = True
    assert diff[~near].max() == 0


def test_negative_samples_have_no_faces_and_leave_other_samples_unchanged(pool):
    import torch

    root = pool
    entries, human = read_pool(pool, pool / "labels_identity.json", {})
    plain = PoolDataset(root, entries, human, image_size=96, seed=5)
    none = PoolDataset(root, entries, human, image_size=96, seed=5, negative_prob=0.0)
    assert torch.equal(plain[0][0], none[0][0])  # the option at 0 draws nothing
    every = PoolDataset(root, entries, human, image_size=96, seed=5, negative_prob=0.999999)
    images = [every[i][0] for i in range(len(entries))]
    assert all(every[i][1]["boxes"].shape == (0, 4) and every[i][1]["online"] for i in range(len(entries)))
    assert all(x.shape == (3, 96, 96) and x.dtype == torch.float32 for x in images)
    kinds = [no_face_image(64, np.random.default_rng(s)) for s in range(30)]
    assert all(k.shape == (64, 64, 3) and k.dtype == np.uint8 for k in kinds)
    flat = [k for k in kinds if (k == k[0, 0]).all()]
    assert 0 < len(flat) < len(kinds)  # flat colours and textured images both occur
    # Fine noise of reduced contrast (drawn larger, then shrunk, as the detector shrinks a large
    # noise image) occurs: neighbouring pixels uncorrelated, spread below uniform noise's 73.9.
    def fine_low_contrast(k: np.ndarray) -> bool:
        g = k[..., 0].astype(np.float64)
        return 0 < g.std() < 70 and np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1] < 0.3
    assert any(fine_low_contrast(no_face_image(64, np.random.default_rng(s))) for s in range(60))
