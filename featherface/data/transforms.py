"""Training augmentation (RetinaFace recipe) on NumPy arrays.

Conventions: images are ``H x W x 3`` uint8 BGR; boxes ``(K, 4)`` pixel ``x1, y1, x2, y2``;
landmarks ``(K, 5, 2)`` pixels; ``has_landmarks (K,)`` bool. Every function returns new arrays.
Randomness comes from an explicit ``numpy.random.Generator`` so that a sample's augmentation is
reproducible from (seed, epoch, index), which makes resumed runs identical to uninterrupted ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.constants import MEAN_BGR, MIRROR_ORDER
from . import MASK_STYLES

CROP_SCALES = (0.3, 0.45, 0.6, 0.8, 1.0)
INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)


@dataclass
class Sample:
    image: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    has_landmarks: np.ndarray

    def select(self, keep: np.ndarray) -> "Sample":
        return Sample(self.image, self.boxes[keep], self.landmarks[keep], self.has_landmarks[keep])


def drop_degenerate(s: Sample, min_size: float = 1.0) -> Sample:
    """Remove boxes narrower or shorter than ``min_size`` pixels (they would give log(0))."""
    wh = s.boxes[:, 2:] - s.boxes[:, :2]
    return s.select((wh >= min_size).all(axis=1))


def random_crop(s: Sample, rng: np.random.Generator, tries: int = 250) -> tuple[Sample, bool]:
    """Square crop with side = a random scale of the short side; keeps the faces whose centre
    lies inside the crop, clips them to it, and requires at least one face to survive.
    Returns ``(sample, cropped)``; after ``tries`` failures the sample is returned unchanged."""
    h, w = s.image.shape[:2]
    if len(s.boxes) == 0:
        return s, False
    centres = (s.boxes[:, :2] + s.boxes[:, 2:]) / 2
    for _ in range(tries):
        side = int(rng.choice(CROP_SCALES) * min(h, w))
        if side < 1:
            continue
        left = 0 if w == side else int(rng.integers(w - side))
        top = 0 if h == side else int(rng.integers(h - side))
        lo = np.array([left, top], np.float32)
        hi = lo + side
        inside = ((centres > lo) & (centres < hi)).all(axis=1)
        if not inside.any():
            continue
        boxes = s.boxes[inside].copy()
        boxes[:, :2] = np.maximum(boxes[:, :2], lo) - lo
        boxes[:, 2:] = np.minimum(boxes[:, 2:], hi) - lo
        landmarks = s.landmarks[inside] - lo
        has = s.has_landmarks[inside].copy()
        out = drop_degenerate(Sample(s.image[top:top + side, left:left + side], boxes, landmarks, has))
        if len(out.boxes) == 0:
            continue
        return out, True
    return s, False


def photometric_distort(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness (+-32), contrast and saturation (x0.5..1.5) and hue (+-18 deg), each
    with probability 0.5; contrast before or after the HSV part at random (RetinaFace order)."""
    img = image.astype(np.float32)

    def contrast(x):
        return x * rng.uniform(0.5, 1.5) if rng.random() < 0.5 else x

    if rng.random() < 0.5:
        img += rng.uniform(-32, 32)
    first = rng.random() < 0.5
    if first:
        img = contrast(img)
    hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.float32)
    if rng.random() < 0.5:
        hsv[:, :, 1] *= rng.uniform(0.5, 1.5)
    if rng.random() < 0.5:
        hsv[:, :, 0] = (hsv[:, :, 0] + rng.uniform(-9, 9)) % 180  # OpenCV hue is degrees / 2
    img = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    if not first:
        img = contrast(img)
    return np.clip(img, 0, 255).astype(np.uint8)


def mirror(s: Sample) -> Sample:
    """Horizontal flip; boxes and landmarks move with the pixels and left/right points swap."""
    w = s.image.shape[1]
    boxes = s.boxes.copy()
    boxes[:, [0, 2]] = w - s.boxes[:, [2, 0]]
    landmarks = s.landmarks.copy()
    landmarks[:, :, 0] = w - landmarks[:, :, 0]
    landmarks = landmarks[:, list(MIRROR_ORDER)]
    return Sample(np.ascontiguousarray(s.image[:, ::-1]), boxes, landmarks, s.has_landmarks.copy())


def mean_window(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The ``side x side`` square of ``image`` whose top-left corner is ``(x0, y0)`` in the image's
    pixels (negative or past the edge allowed); what lies outside the photo is the mean colour.
    A window inside the photo is a view, not a copy."""
    h, w = image.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + side <= w and y0 + side <= h:
        return image[y0:y0 + side, x0:x0 + side]
    out = np.empty((side, side, 3), image.dtype)
    out[:] = np.asarray(MEAN_BGR, dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


# Face-mask colours, BGR: surgical blue, white, black, grey, light green.
MASK_COLOURS_BGR = ((225, 200, 150), (235, 235, 235), (40, 40, 40), (170, 170, 170), (190, 220, 180))
# A mask's outline in units of the face box (teacher's convention: brow to just below the chin,
# about 0.85x as wide as the cheeks): x from the box centre in box widths, y from the box top in
# box heights. It spans the cheeks (a little wider than the box) from the nose bridge to the chin.
MASK_OUTLINE = np.array([(-0.58, 0.46), (-0.30, 0.39), (0.0, 0.37), (0.30, 0.39), (0.58, 0.46), (0.55, 0.80),
                         (0.30, 0.98), (0.0, 1.04), (-0.30, 0.98), (-0.55, 0.80)], np.float32)
# A cup-shaped (N95 / KN95) mask in the same units: pointed at the nose and below the chin.
MASK_OUTLINE_CUP = np.array([(-0.54, 0.50), (-0.32, 0.42), (0.0, 0.37), (0.32, 0.42), (0.54, 0.50), (0.50, 0.78),
                             (0.26, 0.98), (0.0, 1.07), (-0.26, 0.98), (-0.50, 0.78)], np.float32)
# Where the ear loops end, in the same units (left side; the right one is mirrored).
EAR_POINT = np.array([-0.66, 0.45], np.float32)
# "plain": the original masks (surgical outline, five colours, one pleat). "varied" adds cup-shaped
# masks, masks worn higher or lower, any colour, striped cloth, one to three pleats or a centre
# seam, and ear loops.


def _mask_look(rng: np.random.Generator, w: float, varied: bool):
    """Draw one mask's outline (box units), colour (BGR float32), second colour for stripes (or
    None) and fold lines (``("pleat", y)`` or ``("seam", 0)``); the draws of ``plain`` are the original ones."""
    outline, cup = MASK_OUTLINE, False
    if varied:
        cup = rng.random() < 0.35
        outline = (MASK_OUTLINE_CUP if cup else MASK_OUTLINE) + np.array([0.0, rng.uniform(-0.03, 0.08)], np.float32)
    outline = outline + rng.uniform(-0.04, 0.04, outline.shape).astype(np.float32)
    if varied and rng.random() < 0.4:  # cloth masks come in any colour
        colour = rng.uniform(20, 245, 3).astype(np.float32)
    else:
        colour = np.asarray(MASK_COLOURS_BGR[int(rng.integers(len(MASK_COLOURS_BGR)))], np.float32)
    colour = colour * rng.uniform(0.75, 1.1)
    stripes = rng.uniform(20, 245, 3).astype(np.float32) if varied and w >= 16 and rng.random() < 0.25 else None
    if not varied:
        folds = [("pleat", 0.68)]
    elif cup:
        folds = [("seam", 0.0)]
    else:
        folds = [("pleat", y) for y in np.sort(rng.uniform(0.55, 0.9, int(rng.integers(1, 4))))]
    return outline, colour, stripes, folds


def _drawn_boxes(boxes: np.ndarray, rng: np.random.Generator, prob: float, min_width: float):
    """The face boxes ``(K, 4)`` a per-face augmentation (masks, occluders) draws on, as
    ``(x1, y1, x2, y2, w, h)``: each box with probability ``prob`` (one ``rng.random()`` per box,
    in order, so samples stay reproducible) and only if it is at least ``min_width`` px wide."""
    for x1, y1, x2, y2 in np.asarray(boxes, np.float32).reshape(-1, 4):
        if rng.random() >= prob:
            continue
        w, h = x2 - x1, y2 - y1
        if w < min_width:
            continue
        yield x1, y1, x2, y2, w, h


def paint_masks(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, prob: float,
                min_width: float = 6.0, style: str = "plain") -> np.ndarray:
    """Draw a face mask over each face box ``(K, 4)`` (pixels, the teacher's convention) with
    probability ``prob``: an outline (:data:`MASK_OUTLINE`, jittered) filled with a colour
    (:data:`MASK_COLOURS_BGR`, brightness jittered), soft-edged, shaded darker towards the sides
    and the chin, with darker folds on faces 24 px or wider. ``style`` is one of
    :data:`MASK_STYLES`; ``"varied"`` also draws cup-shaped, any-colour, striped masks with ear
    loops (on faces 20 px or wider).
    Boxes narrower than ``min_width`` px are left alone (no mask could be drawn there). Boxes do
    not move: a masked face is still a face. Returns a new image; one ``rng.random()`` per box
    and more per painted box, so a sample stays reproducible."""
    if style not in MASK_STYLES:
        raise ValueError(f"style must be one of {MASK_STYLES}, got {style!r}")
    varied = style == "varied"
    out = image.copy()
    for x1, y1, x2, y2, w, h in _drawn_boxes(boxes, rng, prob, min_width):
        outline, colour, stripes, folds = _mask_look(rng, w, varied)
        scale, origin = np.array([w, h], np.float32), np.array([(x1 + x2) / 2, y1], np.float32)
        pts = outline * scale + origin
        loops = []
        if varied and w >= 20:  # ear loops: from the mask's upper and lower side corners to the ear
            for sign in (-1.0, 1.0):
                ear = EAR_POINT * [sign, 1.0] * scale + origin
                loops += [(pts[0 if sign < 0 else 4], ear), (pts[9 if sign < 0 else 5], ear)]
        extent = np.concatenate([pts] + [np.asarray(loop) for loop in loops]) if loops else pts
        # Drawn in a padded patch around the mask: a soft-edged coverage (alpha) and a shading that
        # darkens towards the sides and the chin, as cloth curving around a face does.
        x0, y0 = int(max(0, np.floor(extent[:, 0].min()) - 2)), int(max(0, np.floor(extent[:, 1].min()) - 2))
        xe = int(min(out.shape[1], np.ceil(extent[:, 0].max()) + 3))
        ye = int(min(out.shape[0], np.ceil(extent[:, 1].max()) + 3))
        if xe <= x0 or ye <= y0:
            continue

        def fixed(p):  # pixel coordinates in the patch with 4 fractional bits (cv2's shift=4):
            return tuple(int(v) for v in np.round((np.asarray(p) - [x0, y0]) * 16))  # small faces keep their shape

        alpha = np.zeros((ye - y0, xe - x0), np.float32)
        cv2.fillPoly(alpha, [np.round((pts - [x0, y0]) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
        for a, b in loops:
            cv2.line(alpha, fixed(a), fixed(b), 1.0, max(1, int(w / 60)), cv2.LINE_AA, shift=4)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, w / 60))[:, :, None]
        yy, xx = np.arange(y0, ye, dtype=np.float32)[:, None], np.arange(x0, xe, dtype=np.float32)[None, :]
        shade = 1.0 - 0.25 * ((xx - (x1 + x2) / 2) / (0.6 * w)) ** 2 - 0.3 * np.clip((yy - y1) / h - 0.6, 0, None)
        if w >= 24:  # pleats across the mask, or a seam down the middle of a cup
            fold = np.ones_like(shade)
            for kind, fy in folds:
                if kind == "pleat":
                    a, b = (x1 + 0.05 * w, y1 + fy * h), (x2 - 0.05 * w, y1 + fy * h)
                else:
                    a, b = pts[2], pts[7]
                cv2.line(fold, fixed(a), fixed(b), 0.8, max(1, int(w / 40)), cv2.LINE_AA, shift=4)
            shade = shade * fold
        paint = np.broadcast_to(colour, shade.shape + (3,))
        if stripes is not None:  # striped cloth: a second colour in bands about a tenth of the face wide
            period, angle = w * rng.uniform(0.08, 0.2), rng.uniform(0, np.pi)
            band = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period) > 0
            paint = np.where(band[:, :, None], colour, stripes)
        paint = paint * np.clip(shade, 0.6, 1.0)[:, :, None]
        patch = out[y0:ye, x0:xe].astype(np.float32)
        out[y0:ye, x0:xe] = np.clip(patch * (1 - alpha) + paint * alpha, 0, 255).astype(np.uint8)
    return out


#: Side an occluder enters a face from, and how often: below (a raised hand, a cup, the head of
#: someone in front), either side (an arm, a neighbour's head), above (a cap's brim, a hand on the
#: forehead). Crowd photos are full of these; V1 still scores such faces 0.5-0.9 where Nano gave
#: 0.03-0.4 (crowd_baseball.jpg).
OCCLUDER_SIDES = ("below", "left", "right", "above")
OCCLUDER_SIDE_P = (0.4, 0.2, 0.2, 0.2)

def occlude_faces(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, prob: float,
                  min_width: float = 8.0, cover: tuple[float, float] = (0.2, 0.45)) -> np.ndarray:
    """Cover part of each face box ``(K, 4)`` (pixels) with probability ``prob``: a soft-edged,
    rotated ellipse enters the face from one side (:data:`OCCLUDER_SIDES`) and reaches a fraction
    ``cover`` (uniform in the range) of the face's height or width into it; most of the ellipse
    lies outside the face, as an arm or a hand does. At most about half of a face is hidden,
    never all of it. What covers it is texture copied from a random place of the same photo (skin,
    cloth, hair or background of that scene).
    Boxes narrower than ``min_width`` px are left alone; boxes do not move (an occluded face is still a face).
    Returns a new image; one ``rng.random()`` per box and more per covered box, so a sample stays
    reproducible."""
    lo, hi = cover
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"cover must be 0 < lo <= hi < 1, got {cover}")
    out = image.copy()
    H, W = image.shape[:2]
    for x1, y1, x2, y2, w, h in _drawn_boxes(boxes, rng, prob, min_width):
        side = OCCLUDER_SIDES[int(rng.choice(len(OCCLUDER_SIDES), p=OCCLUDER_SIDE_P))]
        depth = rng.uniform(lo, hi)
        cx, cy = (x1 + x2) / 2 + rng.uniform(-0.25, 0.25) * w, (y1 + y2) / 2 + rng.uniform(-0.25, 0.25) * h
        # half-axes as fractions of the face: (across the entry direction, along it)
        across, along = (0.3, 0.6), (0.4, 0.8)
        if side in ("below", "above"):
            # the ellipse's tip reaches ``depth`` into the face and the rest lies beyond its edge
            rx, ry = w * rng.uniform(*across), h * rng.uniform(*along)
            cy = y2 - depth * h + ry if side == "below" else y1 + depth * h - ry
        else:
            rx, ry = w * rng.uniform(*along), h * rng.uniform(*across)
            cx = x1 + depth * w - rx if side == "left" else x2 - depth * w + rx
        angle = rng.uniform(-25, 25)  # degrees; small, so the tip stays where ``depth`` put it
        r = max(rx, ry)
        x0, y0 = int(max(0, np.floor(cx - r) - 2)), int(max(0, np.floor(cy - r) - 2))
        xe, ye = int(min(W, np.ceil(cx + r) + 3)), int(min(H, np.ceil(cy + r) + 3))
        pw, ph = xe - x0, ye - y0
        if pw <= 0 or ph <= 0 or pw >= W or ph >= H:
            continue
        # The texture: a window of the same size elsewhere in the photo, not overlapping this face.
        for _ in range(8):
            sx, sy = int(rng.integers(W - pw + 1)), int(rng.integers(H - ph + 1))
            if sx + pw <= x1 or sx >= x2 or sy + ph <= y1 or sy >= y2:
                break
        else:
            continue
        alpha = np.zeros((ph, pw), np.float32)
        centre = (int(round((cx - x0) * 16)), int(round((cy - y0) * 16)))
        axes = (int(round(rx * 16)), int(round(ry * 16)))
        cv2.ellipse(alpha, centre, axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA, shift=4)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, w / 40))[:, :, None]
        texture = image[sy:sy + ph, sx:sx + pw].astype(np.float32)
        patch = out[y0:ye, x0:xe].astype(np.float32)
        out[y0:ye, x0:xe] = np.clip(patch * (1 - alpha) + texture * alpha, 0, 255).astype(np.uint8)
    return out


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """Pad right/bottom with the mean colour so the image is square (boxes do not move)."""
    return mean_window(image, 0, 0, max(image.shape[:2]))


class TrainTransform:
    """crop -> photometric distortion -> mirror (p = 0.5) -> pad to square (if no crop) ->
    resize to ``image_size`` with a random interpolation -> subtract mean.

    Returns ``(image CHW float32, boxes (K,4), landmarks (K,10), has_landmarks (K,))`` with boxes
    and landmarks normalised to [0, 1] by the output size.
    """

    def __init__(self, image_size: int = 640) -> None:
        self.image_size = image_size

    def __call__(self, s: Sample, rng: np.random.Generator):
        s = drop_degenerate(s)
        s, cropped = random_crop(s, rng)
        s = Sample(photometric_distort(s.image, rng), s.boxes, s.landmarks, s.has_landmarks)
        if rng.random() < 0.5:
            s = mirror(s)
        image = s.image if cropped else pad_to_square(s.image)
        side = image.shape[0]  # square either way
        image = cv2.resize(image, (self.image_size, self.image_size), interpolation=INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))])
        x = (image.astype(np.float32) - np.asarray(MEAN_BGR, np.float32)).transpose(2, 0, 1)
        boxes = (s.boxes / side).astype(np.float32)
        landmarks = (s.landmarks / side).reshape(-1, 10).astype(np.float32)
        return np.ascontiguousarray(x), boxes, landmarks, s.has_landmarks.astype(bool)
