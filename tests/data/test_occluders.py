"""Hand and arm cut-outs: what ``limb_cutouts`` keeps and how it turns it, the bank's file round
trip, and where ``paste_cutout`` / ``occlude_faces(style="cutout"|"mixed")`` put them."""
import numpy as np
import pytest

from featherface.data.occluders import CCP_SKIN, Cutout, OccluderBank, limb_cutouts, paste_cutout
from featherface.data.transforms import occlude_faces

RED, GREY = (0, 0, 255), (128, 128, 128)
WATCH = 57  # Clothing Co-Parsing's "watch"


def _person() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 300x200 labelled photo: a face box (80, 20)-(120, 70) of skin with its neck, a hanging arm
    (x 40-52, y 60-170) with a watch at y 140-145 and a red hand (its last 20 rows), an arm held
    out to the right (x 140-190, y 100-110) with a red hand at its right end, a leg starting at
    y 240 and a 5x5 speck of skin."""
    parts = np.zeros((300, 200), np.int32)
    image = np.full((300, 200, 3), GREY, np.uint8)
    parts[20:70, 80:120] = CCP_SKIN  # face
    parts[70:90, 92:108] = CCP_SKIN  # neck
    parts[60:170, 40:52] = CCP_SKIN
    parts[140:145, 40:52] = WATCH
    image[150:170, 40:52] = RED
    parts[100:110, 140:190] = CCP_SKIN
    image[100:110, 175:190] = RED
    parts[240:300, 90:100] = CCP_SKIN  # leg: starts 4.4 face heights below the face's top
    parts[100:105, 10:15] = CCP_SKIN  # speck: 25 px, under 0.15 face areas (300 px)
    return image, parts, np.array([[80, 20, 120, 70]], np.float32)


def _is_red(px: np.ndarray) -> np.ndarray:
    """Red, also after a paste shifted it towards a grey face's tone (red x0.6 at most)."""
    px = px.reshape(-1, 3).astype(int)
    return px[:, 2] - px[:, :2].max(1) > 100


def test_limb_cutouts_keep_the_arms_upright_with_the_hand_at_the_bottom():
    image, parts, faces = _person()
    cuts = limb_cutouts(image, parts, faces)
    assert len(cuts) == 2  # the two arms; head, neck, leg and speck gone; the watch joins its arm
    for c in cuts:
        h, w = c.alpha.shape
        assert c.bgr.shape == (h, w, 3) and c.bgr.dtype == np.uint8 and c.alpha.dtype == np.uint8
        assert c.face_height == 50.0
        assert h > 4 * w  # upright: the long axis is vertical
        inside = c.alpha > 127
        assert _is_red(c.bgr[-5:][inside[-5:]]).mean() > 0.9  # the hand (far from the face) at the bottom
        assert not _is_red(c.bgr[:5][inside[:5]]).any()
    assert sorted(c.alpha.shape[0] for c in cuts) == pytest.approx([50, 110], abs=3)
    with pytest.raises(ValueError, match="face box"):
        limb_cutouts(image, parts, np.zeros((0, 4)))
    with pytest.raises(ValueError, match="one size"):
        limb_cutouts(image[:100], parts, faces)


def test_bank_round_trips_through_its_file(tmp_path):
    rng = np.random.default_rng(0)
    cuts = [Cutout(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 256, (h, w), dtype=np.uint8),
                   float(h)) for h, w in ((7, 3), (1, 1), (20, 9))]
    OccluderBank(cuts).save(tmp_path / "bank.npz")
    back = OccluderBank.load(tmp_path / "bank.npz")
    assert len(back) == 3
    for a, b in zip(cuts, back.cutouts):
        np.testing.assert_array_equal(a.bgr, b.bgr)
        np.testing.assert_array_equal(a.alpha, b.alpha)
        assert a.face_height == b.face_height
    with pytest.raises(ValueError, match="at least one"):
        OccluderBank([])


def _red_bar() -> Cutout:
    """A 100x20 limb cut from a person whose face was 50 px high: green, its hand (last 20 rows) red."""
    bgr = np.full((100, 20, 3), (0, 255, 0), np.uint8)
    bgr[80:] = RED
    return Cutout(bgr, np.full((100, 20), 255, np.uint8), 50.0)


@pytest.mark.parametrize("side", ["below", "above", "left", "right"])
def test_paste_reaches_into_the_face_from_its_side(side):
    """The limb enters from ``side`` with its hand first, and the hand stops (depth + 0.15) of the
    face inside the box; it changes part of the face, never all."""
    x1, y1, x2, y2 = 150, 100, 210, 180  # 60x80
    depth = 0.3
    for seed in range(20):
        image = np.full((300, 400, 3), GREY, np.uint8)
        out = image.copy()
        paste_cutout(out, image, (x1, y1, x2, y2), side, depth, _red_bar(), np.random.default_rng(seed))
        changed = (out != image).any(axis=2)
        ys, xs = np.nonzero(changed)
        reach = {"below": ys.min() - (y2 - 0.45 * 80), "above": (y1 + 0.45 * 80) - ys.max(),
                 "left": (x1 + 0.45 * 60) - xs.max(), "right": xs.min() - (x2 - 0.45 * 60)}[side]
        assert -1.5 <= reach <= 1.5, (seed, reach)
        assert 0 < changed[y1:y2, x1:x2].mean() < 0.6
        face = out[y1:y2, x1:x2][changed[y1:y2, x1:x2]].astype(int)
        red, green = _is_red(face).sum(), (face[:, 1] - face[:, [0, 2]].max(1) > 100).sum()
        assert red > 2 * green, (seed, red, green)  # the hand is what covers the face


def test_occlude_faces_with_cutouts():
    """style "cutout" pastes from the bank and needs one; the same seed draws the same image;
    "mixed" draws cut-outs (red) and photo texture (grey-noise) both."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 100, (200, 400, 3), dtype=np.uint8)  # dark noise: red cannot come from it
    boxes = np.array([[160, 40, 220, 100]], np.float32)
    bank = OccluderBank([_red_bar()])
    out = occlude_faces(image, boxes, np.random.default_rng(3), 1.0, style="cutout", bank=bank)
    assert _is_red(out[40:100, 160:220]).any()
    np.testing.assert_array_equal(out, occlude_faces(image, boxes, np.random.default_rng(3), 1.0, style="cutout",
                                                     bank=bank))
    kinds = {bool(_is_red(occlude_faces(image, boxes, np.random.default_rng(s), 1.0, style="mixed", bank=bank)).any())
             for s in range(20)}
    assert kinds == {True, False}
    for style in ("cutout", "mixed"):
        with pytest.raises(ValueError, match="bank"):
            occlude_faces(image, boxes, np.random.default_rng(0), 1.0, style=style)
