"""Constants of the input/output contract shared by every model and checkpoint."""
from __future__ import annotations

#: Per-channel mean subtracted from BGR pixels (B, G, R); there is no std division.
MEAN_BGR: tuple[float, float, float] = (104.0, 117.0, 123.0)

#: Order of the five landmark points in every output; "left" means IMAGE left.
LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")

#: The landmark order after a horizontal flip: the eyes and the mouth corners swap sides.
MIRROR_ORDER: tuple[int, ...] = (1, 0, 2, 4, 3)

#: Anchor sizes (pixels) per pyramid level and the level strides.
MIN_SIZES: tuple[tuple[int, int], ...] = ((16, 32), (64, 128), (256, 512))
STEPS: tuple[int, ...] = (8, 16, 32)
#: Box-coding variances (centre, size).
VARIANCES: tuple[float, float] = (0.1, 0.2)
