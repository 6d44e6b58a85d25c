"""Masks: inside the grown face box and nowhere else, strength scaled to the face."""
import numpy as np
import pytest

from featherface.core.anonymize import anonymize, masked_fraction


def _noise(h=200, w=300, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["blur", "pixelate", "solid"])
@pytest.mark.parametrize("shape", ["ellipse", "box"])
def test_only_the_grown_face_region_changes(mode, shape):
    img = _noise()
    box = [100.0, 50.0, 160.0, 130.0]  # 60 x 80; pad 0.25 grows it to 85..175 x 30..150
    out = anonymize(img, [box], mode=mode, shape=shape, pad=0.25, color=(0, 255, 0))
    changed = (out != img).any(axis=2)
    region = masked_fraction(img.shape[:2], [box], pad=0.25, shape=shape)
    assert not changed[~region].any()  # nothing outside the mask
    assert changed[region].mean() > 0.95  # (almost) every masked pixel altered
    ys, xs = np.nonzero(region)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == ((85, 174, 30, 149) if shape == "box" else (xs.min(), xs.max(),
                                                                                                    ys.min(), ys.max()))
    if mode == "solid":
        assert (out[region] == [0, 255, 0]).all()
    assert (img == _noise()).all()  # the input is left alone


def test_pixelate_shows_detail_blocks_across_the_face():
    img = _noise(400, 400)
    out = anonymize(img, [[0, 0, 400, 400]], mode="pixelate", shape="box", pad=0.0, detail=8)
    assert len(np.unique(out[:, :, 0][::50, ::50])) <= 64 and (out[:50, :50] == out[0, 0]).all()


def test_faces_at_the_border_and_empty_inputs():
    img = _noise()
    out = anonymize(img, [[-30, -30, 40, 40]], mode="solid", pad=0.1)
    assert (out[0, 0] == 0).all() and (out[100:, 100:] == img[100:, 100:]).all()
    assert (anonymize(img, []) == img).all()
    with pytest.raises(ValueError, match="mode"):
        anonymize(img, [], mode="smear")


def test_anonymize_without_faces_detects_recall_first():
    """`anonymize(image)` masks the faces `featherface anonymize` would: Nano at the anonymising
    threshold (0.025, not the detection default 0.65), passes by anonymize_passes."""
    from featherface import FaceDetector, read_image
    from featherface.core.anonymize import anonymize, detect_for_anonymizing
    from featherface.core.settings import ANONYMIZE
    from tests.conftest import shared_file

    img = read_image(shared_file("images/crowd_baseball.jpg"))
    faces = detect_for_anonymizing(img)
    assert ANONYMIZE.score_threshold == 0.025 and faces.scores.min() >= ANONYMIZE.score_threshold
    default = FaceDetector.from_pretrained("nano").detect_arrays(img)
    assert len(faces) > len(default)
    np.testing.assert_array_equal(anonymize(img, mode="solid"), anonymize(img, faces, mode="solid"))
