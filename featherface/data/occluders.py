"""Real hand and arm cut-outs, pasted over faces by ``occlude_faces(style="cutout")``.

Why: on ``crowd_baseball.jpg`` three of the five real faces Nano misses are behind a raised hand
or forearm. Synthetic occluders (texture blobs, skin-toned bands) did not move their
scores, so this module cuts real limbs out of photos whose pixels are labelled by hand: Clothing
Co-Parsing (``bearpaw/clothing-co-parsing``, pool source ``street_fashion``) labels 1,004 full-body
street photos per pixel, and its class ``skin`` outside the head is arms, hands and legs.

Conventions: images ``H x W x 3`` uint8 BGR; part maps ``H x W`` integer class ids; face boxes
pixel ``x1, y1, x2, y2``. A :class:`Cutout` is stored *upright*: the limb's long axis is vertical
and its far end from the face (the hand, for an arm) is at the bottom, so a paste can point that
end into a face from any side by one rotation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

#: Clothing Co-Parsing's class ids (``label_list.mat``): skin, and what is worn on hands and wrists
#: (bracelet, gloves, ring, watch) so that a hand with a watch stays one piece.
CCP_SKIN = 41
CCP_LIMB_PARTS = (CCP_SKIN, 9, 18, 34, 57)


@dataclass
class Cutout:
    """One limb: ``bgr (h, w, 3)`` uint8, ``alpha (h, w)`` uint8 (255 inside), upright (see the module
    docstring), and ``face_height``: the height in px of the face box of the person it was cut from,
    at the cut-out's scale, so that pastes keep the natural size of a hand against a face."""
    bgr: np.ndarray
    alpha: np.ndarray
    face_height: float


def limb_cutouts(image: np.ndarray, parts: np.ndarray, faces: np.ndarray, part_ids=CCP_LIMB_PARTS,
                 min_area: float = 0.15, legs_below: float = 4.0) -> list[Cutout]:
    """The arms and hands in one labelled photo, as upright :class:`Cutout` s.

    ``parts (H, W)``: class ids, those in ``part_ids`` are limb pixels. ``faces (K, 4)``: face boxes,
    the first one (the photo's main person) sets the scale. Each face's head and neck (the box
    widened by 40 % of its width each side, from 60 % of its height above it to 90 % below) are
    removed first; what stays splits into connected pieces. A piece is kept when its area is at
    least ``min_area`` face-box areas and it starts above ``legs_below`` face heights under the top
    of the main face (a standing person's hips are about 4 heads down: what starts lower is a leg)."""
    faces = np.asarray(faces, np.float32).reshape(-1, 4)
    if image.shape[:2] != parts.shape or not len(faces):
        raise ValueError(f"need an image and a part map of one size and a face box, got {image.shape}, "
                         f"{parts.shape}, {len(faces)} faces")
    mask = np.isin(parts, part_ids).astype(np.uint8)
    for x1, y1, x2, y2 in faces:
        w, h = x2 - x1, y2 - y1
        mask[max(0, int(y1 - 0.6 * h)):max(0, int(np.ceil(y2 + 0.9 * h))),
             max(0, int(x1 - 0.4 * w)):max(0, int(np.ceil(x2 + 0.4 * w)))] = 0
    fx1, fy1, fx2, fy2 = faces[0]
    fw, fh = fx2 - fx1, fy2 - fy1
    face_centre = np.array([(fx1 + fx2) / 2, (fy1 + fy2) / 2])
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area < min_area * fw * fh or y >= fy1 + legs_below * fh:
            continue
        piece = (labels[y:y + h, x:x + w] == i).astype(np.uint8) * 255
        out.append(_upright(image[y:y + h, x:x + w], piece, face_centre - (x, y), float(fh)))
    return out


def _upright(bgr: np.ndarray, alpha: np.ndarray, face_centre: np.ndarray, face_height: float) -> Cutout:
    """Rotate a piece so that its principal axis is vertical with the end farther from
    ``face_centre`` (piece pixels) at the bottom, and crop it to its pixels."""
    ys, xs = np.nonzero(alpha)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    mean = pts.mean(0)
    _, vecs = np.linalg.eigh(np.cov((pts - mean).T) + 1e-9 * np.eye(2))
    axis = vecs[:, 1]  # largest eigenvalue last
    proj = (pts - mean) @ axis
    # the far end from the face must point down (+y) after rotation
    if np.linalg.norm(pts[proj.argmax()] - face_centre) < np.linalg.norm(pts[proj.argmin()] - face_centre):
        axis = -axis
    # cv2 turns a vector (cos p, sin p) by ``t`` degrees to (cos(t - p), sin(p - t)): t = p - 90 gives (0, 1)
    bgr_r, a_r = _rotated(bgr.astype(np.float32), alpha.astype(np.float32) / 255,
                          float(np.degrees(np.arctan2(axis[1], axis[0]))) - 90.0)
    return Cutout(np.clip(bgr_r, 0, 255).round().astype(np.uint8), (a_r * 255).round().astype(np.uint8), face_height)


def face_skin(image: np.ndarray, box) -> np.ndarray:
    """The mean BGR (float32, 3) of ``box``'s upper middle in ``image`` (x 30-70 %, y 20-50 %:
    forehead, eyes, nose; above where a painted mask sits): the face's skin tone."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    H, W = image.shape[:2]
    ya, xa = int(np.clip(y1 + 0.2 * h, 0, H - 1)), int(np.clip(x1 + 0.3 * w, 0, W - 1))
    yb, xb = int(np.clip(y1 + 0.5 * h, ya + 1, H)), int(np.clip(x1 + 0.7 * w, xa + 1, W))
    return image[ya:yb, xa:xb].reshape(-1, 3).astype(np.float32).mean(0)


class OccluderBank:
    """A list of :class:`Cutout` s with a compact ``.npz`` form (one flat pixel buffer, no pickles).
    It holds photo pixels: keep its file with the pool, out of git."""

    def __init__(self, cutouts: list[Cutout]) -> None:
        if not cutouts:
            raise ValueError("an occluder bank needs at least one cut-out")
        self.cutouts = cutouts

    def __len__(self) -> int:
        return len(self.cutouts)

    def draw(self, rng: np.random.Generator) -> Cutout:
        return self.cutouts[int(rng.integers(len(self.cutouts)))]

    def save(self, path: str | Path) -> None:
        shapes = np.array([c.alpha.shape for c in self.cutouts], np.int32)
        pixels = np.concatenate([np.dstack([c.bgr, c.alpha]).reshape(-1, 4) for c in self.cutouts])
        np.savez_compressed(path, shapes=shapes, pixels=pixels,
                            face_heights=np.array([c.face_height for c in self.cutouts], np.float32))

    @classmethod
    def load(cls, path: str | Path) -> "OccluderBank":
        with np.load(path) as z:
            shapes, pixels, heights = z["shapes"], z["pixels"], z["face_heights"]
        ends = np.cumsum(shapes.prod(1))
        cutouts = []
        for (h, w), end, fh in zip(shapes, ends, heights):
            px = pixels[end - h * w:end].reshape(h, w, 4)
            cutouts.append(Cutout(np.ascontiguousarray(px[..., :3]), np.ascontiguousarray(px[..., 3]), float(fh)))
        return cls(cutouts)


def paste_cutout(out: np.ndarray, image: np.ndarray, box, side: str, depth: float, cutout: Cutout,
                 rng: np.random.Generator) -> None:
    """Paste the limb end of ``cutout`` over ``box`` of ``out`` (in place): scaled so that its
    source face matches the box's height (x0.9-1.6), cut to its last 0.8-2 face heights (the hand
    and forearm), mirrored half the time, turned to enter from ``side`` (``below``/``above``/
    ``left``/``right``, +-30 degrees) with its end ``depth`` + 0.15 of the face into it, and half
    the time shifted part of the way to the face's skin tone (per channel x0.6-1.6 at most; the tone
    is read from ``image``, the photo before any paste)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    depth += 0.15  # a limb's end is narrower than an ellipse's: at the same depth it covered half as much
    # x0.9-1.6: a hand in front of a face is nearer the camera than the face, so looks larger
    s = h / cutout.face_height * rng.uniform(0.9, 1.6)
    size = (max(1, int(round(cutout.alpha.shape[1] * s))), max(1, int(round(cutout.alpha.shape[0] * s))))
    bgr = cv2.resize(cutout.bgr, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = cv2.resize(cutout.alpha, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    keep = int(np.ceil(rng.uniform(0.8, 2.0) * h))
    bgr, alpha = bgr[-keep:], alpha[-keep:]
    if rng.random() < 0.5:
        bgr, alpha = bgr[:, ::-1], alpha[:, ::-1]
    if rng.random() < 0.5:
        inside = alpha > 0.5
        if inside.any():
            own = bgr[inside].mean(0)
            ratio = np.clip(face_skin(image, box) / np.maximum(own, 1.0), 0.6, 1.6)  # hair or glasses in the box
            bgr = bgr * (1 + rng.uniform(0.3, 1.0) * (ratio - 1))
    # the end is at the bottom: turn it towards the face (below: up; left: right; ...)
    turn = {"above": 0.0, "below": 180.0, "left": 90.0, "right": -90.0}[side] + rng.uniform(-30, 30)
    bgr, alpha = _rotated(bgr, alpha, turn)
    ph, pw = alpha.shape
    cx, cy = (x1 + x2) / 2 + rng.uniform(-0.25, 0.25) * w, (y1 + y2) / 2 + rng.uniform(-0.25, 0.25) * h
    if side == "below":
        x0, y0 = cx - pw / 2, y2 - depth * h
    elif side == "above":
        x0, y0 = cx - pw / 2, y1 + depth * h - ph
    elif side == "left":
        x0, y0 = x1 + depth * w - pw, cy - ph / 2
    else:
        x0, y0 = x2 - depth * w, cy - ph / 2
    x0, y0 = int(round(x0)), int(round(y0))
    H, W = out.shape[:2]
    ax, ay, bx, by = max(0, x0), max(0, y0), min(W, x0 + pw), min(H, y0 + ph)
    if ax >= bx or ay >= by:
        return
    a = alpha[ay - y0:by - y0, ax - x0:bx - x0, None]
    region = out[ay:by, ax:bx].astype(np.float32)
    out[ay:by, ax:bx] = np.clip(region * (1 - a) + bgr[ay - y0:by - y0, ax - x0:bx - x0] * a, 0, 255).astype(np.uint8)


def _rotated(bgr: np.ndarray, alpha: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``bgr (h, w, 3)`` and ``alpha (h, w)`` float32 turned by ``degrees`` (counter-clockwise, as
    cv2) on a canvas big enough to hold them, cropped to where ``alpha`` > 0.02."""
    h, w = alpha.shape
    side = int(np.ceil(np.hypot(h, w))) + 2
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    m[:, 2] += (side / 2 - w / 2, side / 2 - h / 2)
    bgr = cv2.warpAffine(np.ascontiguousarray(bgr), m, (side, side), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(np.ascontiguousarray(alpha), m, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
    ys, xs = np.nonzero(alpha > 0.02)
    if not len(ys):
        return bgr[:0, :0], alpha[:0, :0]
    return bgr[ys.min():ys.max() + 1, xs.min():xs.max() + 1], alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
