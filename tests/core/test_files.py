"""Image files (featherface/core/files.py): formats the batch commands take."""
import json

import numpy as np
import pytest

from featherface.cli import main
from featherface.core.files import decode_image, is_image, read_image
from featherface.core.weights import EXAMPLE_IMAGE


def test_avif_photos_are_detected_like_their_jpeg(tmp_path):
    """AVIF (what phones and browsers now save) was passed over as an unsupported type although
    Pillow reads it; it is an image now."""
    from PIL import Image, features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    src = tmp_path / "in"
    src.mkdir()
    Image.open(EXAMPLE_IMAGE).save(src / "astronaut.avif", quality=90)
    assert is_image(src / "astronaut.avif")
    image, fmt = decode_image(src / "astronaut.avif")
    assert fmt == "AVIF" and image.shape == read_image(EXAMPLE_IMAGE).shape
    assert np.abs(image.astype(int) - read_image(EXAMPLE_IMAGE).astype(int)).mean() < 6  # lossy, the same picture
    out = tmp_path / "out"
    assert main(["-q", "detect", str(src), "--output", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["skipped"] == [] and len(run["results"][0]["faces"]) == 1
    assert decode_image(out / "astronaut.avif")[1] == "AVIF"  # the annotated copy keeps the format
