"""Training data: label readers, augmentation, datasets and the training photo pool."""

#: painted face-mask styles of the augmentation (``--mask-style``), here so that the command line's
#: choices need neither OpenCV nor torch
MASK_STYLES = ("plain", "varied")
