"""Image operations of the light core on numpy ``H x W x C`` uint8 arrays, with Pillow and numpy
only: the OpenCV wheel, with the FFmpeg it bundles, is larger than numpy, onnxruntime and Pillow
together, and the base install stays small enough for serverless functions.

Channel order is never changed here (BGR stays BGR). :func:`resize_linear` is the detector's
resize: bilinear interpolation between the two nearest source pixels on each axis with half-pixel
centres and no antialiasing, OpenCV's ``INTER_LINEAR`` (to within one level of rounding), which
the models were evaluated with and the browser page reproduces.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _pil(image: np.ndarray) -> Image.Image:
    if image.ndim == 2:
        return Image.fromarray(image, "L")
    if image.shape[2] == 4:
        return Image.fromarray(np.ascontiguousarray(image), "RGBA")
    return Image.fromarray(np.ascontiguousarray(image[:, :, :3]), "RGB")


def to_array(img: Image.Image, like: np.ndarray) -> np.ndarray:
    """A writable array copy of ``img`` (as OpenCV's results are), with ``like``'s number of dimensions."""
    out = np.array(img)
    return out if out.ndim == like.ndim else out[:, :, None]


def resize_linear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size = (width, height)`` as OpenCV's ``INTER_LINEAR`` does."""
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image.copy()
    img = _pil(image)
    if w >= iw and h >= ih:
        # enlarging: Pillow's bilinear filter is exactly this, and its fastest path
        return to_array(img.resize((w, h), Image.Resampling.BILINEAR), image)
    # shrinking: Pillow's resize would antialias; an affine map samples two pixels per axis
    return to_array(img.transform((w, h), Image.Transform.AFFINE, (iw / w, 0, 0, 0, ih / h, 0), Image.Resampling.BILINEAR),
                 image)


RESAMPLE = {"area": Image.Resampling.BOX, "cubic": Image.Resampling.BICUBIC, "nearest": Image.Resampling.NEAREST}


def resize(image: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """Resize to ``(width, height)``: ``area`` (pixel averaging, for shrinking), ``cubic`` or ``nearest``."""
    return to_array(_pil(image).resize(size, RESAMPLE[method]), image)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return to_array(_pil(image).filter(ImageFilter.GaussianBlur(radius=sigma)), image)


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` warped by the 2x3 ``matrix`` (source pixel -> output pixel, pixel centres at
    integer coordinates, as OpenCV's ``warpAffine``) into a ``(width, height)`` image, bilinear,
    black outside the source."""
    m = np.vstack([np.asarray(matrix, np.float64).reshape(2, 3), [0, 0, 1]])
    # Pillow maps each output pixel centre (x + 0.5, y + 0.5) through the inverse map into a source
    # whose pixel centres are at + 0.5 too: conjugate by that half-pixel shift
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    a = half @ np.linalg.inv(m) @ np.linalg.inv(half)
    out = _pil(image).transform(size, Image.Transform.AFFINE, tuple(a[:2].ravel()), Image.Resampling.BILINEAR,
                                fillcolor=0)
    return to_array(out, image)


def fill_ellipse(mask: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Set to 255, in place, the pixels of the uint8 ``mask`` (H x W) inside the ellipse inscribed
    in the pixel box ``x1..x2-1, y1..y2-1`` (end-exclusive integers; the box may reach outside)."""
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return
    img = Image.fromarray(mask, "L")
    ImageDraw.Draw(img).ellipse([x1, y1, x2 - 1, y2 - 1], fill=255)
    mask[...] = np.asarray(img)


def fill_ellipses(image_hw: tuple[int, int], boxes) -> np.ndarray:
    """Boolean ``H x W`` map of the pixels inside any of the ellipses inscribed in the pixel boxes
    (as :func:`fill_ellipse` draws them, all at once)."""
    img = Image.new("L", (image_hw[1], image_hw[0]))
    draw = ImageDraw.Draw(img)
    for x1, y1, x2, y2 in boxes:
        if x2 > x1 and y2 > y1:
            draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=255)
    return np.asarray(img) > 0


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR -> grey (ITU-R 601 luma, as OpenCV), uint8."""
    if image.ndim == 2:
        return image
    b, g, r = (image[:, :, k].astype(np.float32) for k in range(3))
    return np.clip(np.rint(0.114 * b + 0.587 * g + 0.299 * r), 0, 255).astype(np.uint8)


def canvas(image: np.ndarray) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A Pillow copy of a BGR array and its drawing context (colours given as BGR tuples land as
    BGR); :func:`to_array` gives the array back."""
    img = _pil(image)
    return img, ImageDraw.Draw(img)
