"""Augmentation moves boxes and landmarks with the pixels; mirror swaps left/right points."""
import numpy as np
import pytest

from featherface.core.constants import MEAN_BGR
from featherface.data.transforms import (MIRROR_ORDER, Sample, TrainTransform, drop_degenerate, mean_window, mirror,
                                         occlude_faces, pad_to_square, paint_masks, random_crop)


def _marked_sample(h=200, w=300, radius=0):
    """A black image with a white pixel (or square of ``radius``) at every landmark and a box
    around them."""
    img = np.zeros((h, w, 3), np.uint8)
    landmarks = np.array([[[60, 50], [100, 52], [80, 70], [65, 90], [97, 91]]], np.float32)
    for x, y in landmarks[0].astype(int):
        img[y - radius:y + radius + 1, x - radius:x + radius + 1] = 255
    boxes = np.array([[50, 40, 110, 100]], np.float32)
    return Sample(img, boxes, landmarks, np.array([True]))


def _bright_pixels(img):
    ys, xs = np.nonzero(img[..., 0] > 127)
    return set(zip(xs.tolist(), ys.tolist()))


def test_mirror_moves_points_with_pixels_and_swaps_left_right():
    s = _marked_sample()
    m = mirror(s)
    w = s.image.shape[1]
    # Pixel column x maps to w - 1 - x; continuous coordinates map x -> w - x (pixel centres at +0.5).
    expected = {(w - 1 - x, y) for x, y in s.landmarks[0].astype(int).tolist()}
    assert _bright_pixels(m.image) == expected
    np.testing.assert_allclose(m.boxes, [[w - 110, 40, w - 50, 100]])
    # The point that was image-left eye is now on the right: index 0 and 1 swap, as do 3 and 4.
    np.testing.assert_allclose(m.landmarks[0, 1], [w - 60, 50])
    np.testing.assert_allclose(m.landmarks[0, 0], [w - 100, 52])
    np.testing.assert_allclose(m.landmarks[0, 2], [w - 80, 70])
    np.testing.assert_allclose(m.landmarks[0, 4], [w - 65, 90])
    assert m.landmarks[0, 0, 0] < m.landmarks[0, 1, 0]  # left eye stays left of right eye
    assert MIRROR_ORDER == (1, 0, 2, 4, 3)
    np.testing.assert_allclose(mirror(m).landmarks, s.landmarks)  # involution


def test_crop_moves_points_with_pixels():
    s = _marked_sample(400, 500)
    for seed in range(20):
        c, cropped = random_crop(s, np.random.default_rng(seed))
        if not cropped or len(c.boxes) == 0:
            continue
        got = _bright_pixels(c.image)
        h, w = c.image.shape[:2]
        # Landmarks that fall inside the crop land exactly on the white pixels.
        want = {(int(x), int(y)) for x, y in c.landmarks[0] if 0 <= x < w and 0 <= y < h}
        assert want <= got, seed
        assert (c.boxes[:, :2] >= 0).all() and (c.boxes[:, 2] <= w).all() and (c.boxes[:, 3] <= h).all()


def test_pad_to_square_keeps_pixels_and_fills_mean():
    img = np.full((100, 160, 3), 7, np.uint8)
    sq = pad_to_square(img)
    assert sq.shape == (160, 160, 3)
    assert (sq[:100] == 7).all() and (sq[100:] == np.array(MEAN_BGR, np.uint8)).all()


def test_degenerate_boxes_dropped():
    s = _marked_sample()
    s = Sample(s.image, np.array([[1, 1, 1, 9], [1, 1, 9, 9]], np.float32), np.zeros((2, 5, 2), np.float32), np.array([False, False]))
    assert drop_degenerate(s).boxes.tolist() == [[1, 1, 9, 9]]


@pytest.mark.parametrize("seed", range(6))
def test_train_transform_output_contract(seed):
    s = _marked_sample(240, 320, radius=3)
    x, boxes, landmarks, has = TrainTransform(128)(s, np.random.default_rng(seed))
    assert x.shape == (3, 128, 128) and x.dtype == np.float32
    assert boxes.shape[1] == 4 and landmarks.shape == (len(boxes), 10) and has.dtype == bool
    if len(boxes):
        assert (boxes >= 0).all() and (boxes <= 1).all()
        # The white squares move with the landmarks (up to resampling blur and photometric
        # distortion): each normalised landmark inside the output lands on a bright spot.
        img = (x.transpose(1, 2, 0) + np.asarray(MEAN_BGR, np.float32)).mean(axis=2)
        background = np.median(img)
        for px, py in (landmarks[0].reshape(5, 2) * 128):
            if not (0 <= px < 128 and 0 <= py < 128):
                continue
            r = img[max(0, int(py) - 1):int(py) + 2, max(0, int(px) - 1):int(px) + 2]
            assert r.max() - background > 50, (seed, px, py)


def test_window_pads_with_the_mean_colour():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    inside = mean_window(img, 1, 0, 4)
    assert np.shares_memory(inside, img)  # a window inside the photo is a view
    np.testing.assert_array_equal(inside, img[0:4, 1:5])
    out = mean_window(img, -2, 1, 5)  # 2 columns left of the photo, 2 rows below it
    mean = np.array(MEAN_BGR, np.uint8)
    np.testing.assert_array_equal(out[:3, 2:], img[1:4, 0:3])
    assert (out[:, :2] == mean).all() and (out[3:] == mean).all()
    assert (mean_window(img, 10, 10, 3) == mean).all()  # no overlap at all


def test_paint_masks_probability_size_and_reproducibility():
    image = np.full((100, 200, 3), 128, np.uint8)
    boxes = np.array([[20, 10, 80, 80], [150, 50, 154, 55]], np.float32)  # a face, and one too small to paint
    before = image.copy()
    assert (paint_masks(image, boxes, np.random.default_rng(0), 0.0) == image).all()
    a = paint_masks(image, boxes, np.random.default_rng(5), 1.0)
    np.testing.assert_array_equal(image, before)  # a new image; the input is untouched
    np.testing.assert_array_equal(a, paint_masks(image, boxes, np.random.default_rng(5), 1.0))
    changed = (a != image).any(axis=2)
    assert not changed[:, 140:].any()  # the 4 px box is left alone
    assert changed[50:75, 40:60].all() and not changed[10:30].any()  # below the nose, not the eyes
    with pytest.raises(ValueError):
        paint_masks(image, np.zeros((1, 3), np.float32), np.random.default_rng(0), 1.0)


def test_paint_masks_varied_style():
    """'varied' masks are reproducible, differ from the plain ones, cover the lower face and leave
    the eyes alone whatever shape, height and colour they draw; ear loops reach past the box sides."""
    image = np.full((120, 200, 3), 128, np.uint8)
    boxes = np.array([[60, 10, 140, 100]], np.float32)  # an 80 px face: ear loops are drawn
    with pytest.raises(ValueError, match="style"):
        paint_masks(image, boxes, np.random.default_rng(0), 1.0, style="fancy")
    reached_past_sides = 0
    for seed in range(20):
        v = paint_masks(image, boxes, np.random.default_rng(seed), 1.0, style="varied")
        np.testing.assert_array_equal(v, paint_masks(image, boxes, np.random.default_rng(seed), 1.0, style="varied"))
        changed = (v != image).any(axis=2)
        # mouth and chin (a few pixels may keep their grey by chance: stripes of any colour), not the eyes
        assert changed[70:90, 85:115].mean() > 0.9 and not changed[10:35].any()
        reached_past_sides += changed[45:55, :52].any() and changed[45:55, 148:].any()
        if seed == 0:
            assert (v != paint_masks(image, boxes, np.random.default_rng(seed), 1.0)).any()
    assert reached_past_sides == 20


def test_occlude_faces_covers_part_of_each_face_with_texture_from_the_photo():
    """prob 1: each face (60 px) gets texture copied from elsewhere over part of it, never all of it,
    nothing far from it changes, the 4 px box is left alone, the input is untouched, and the same
    seed draws the same image; prob 0 changes nothing."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (200, 400, 3), dtype=np.uint8)  # texture: copied pixels show up as changes
    image[40:100, 160:220] = 128  # the face: flat grey
    boxes = np.array([[160, 40, 220, 100], [370, 150, 374, 154]], np.float32)
    before = image.copy()
    assert (occlude_faces(image, boxes, np.random.default_rng(0), 0.0) == image).all()
    covered = []
    for seed in range(30):
        out = occlude_faces(image, boxes, np.random.default_rng(seed), 1.0)
        np.testing.assert_array_equal(image, before)
        np.testing.assert_array_equal(out, occlude_faces(image, boxes, np.random.default_rng(seed), 1.0))
        changed = (out != image).any(axis=2)
        far = np.ones_like(changed, bool)
        far[:, 60:320] = False  # an ellipse from the side reaches at most 1.6 face widths beyond the box
        assert not changed[far].any()  # the 4 px box at x 370 included
        covered.append(changed[40:100, 160:220].mean())
    assert 0.05 < min(covered) and max(covered) < 0.75, covered  # a part of the face, never all of it
    assert np.mean(covered) > 0.2
    with pytest.raises(ValueError, match="cover"):
        occlude_faces(image, boxes, np.random.default_rng(0), 1.0, cover=(0.5, 1.0))

