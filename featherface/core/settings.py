"""Every default of detection and anonymisation, declared once.

:data:`DETECTOR` and :data:`ANONYMIZE` are what the library (``FaceDetector``, ``anonymize``,
``AnonymizeJob``), the command line (its flags and their help are generated from the fields here)
and the in-browser page (through the served ``config.json``: :func:`page_settings`) start from. A
field's ``help`` metadata is the flag's help text.

Where the numbers come from:

* detection: the RetinaFace/FeatherFace test settings (NMS IoU 0.4, 5,000 candidates before NMS,
  750 after) with box voting (``core/postprocess.py`` says where it was measured), at long side
  640; the score threshold is the weights' own recommendation (0.65 for the bundled Nano);
* anonymisation: recall first, chosen on 600 human-labelled TRAINING pool photos (never on the
  benchmarks; ``benchmarks/results/anonymize_operating_point.md``): threshold 0.025 left 1.8 % of
  the faces visible while masking clearly less background than deface, and large images get a
  second pass at their own size.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any


def setting(default: Any, help: str, **extra: Any) -> Any:
    """A settings field with its command-line help (and argparse extras such as ``choices``)."""
    return field(default=default, metadata={"help": help, **extra})


#: images processed at once by batch runs and the service: across files, not inside one inference,
#: which keeps a busy machine from thrashing (README, "Threads"): the CPUs, at most 4
WORKERS = min(4, os.cpu_count() or 1)

#: the largest long side a detection pass may resize to, and the largest aligned crop: memory grows
#: with their square (a long side of 100,000 asked for tens of GB); checked before allocating
MAX_LONG_SIDE = 8192
MAX_CROP_SIZE = 1120

#: the score threshold of weights that recommend none
FALLBACK_SCORE_THRESHOLD = 0.5

MODES = ("blur", "pixelate", "solid")
SHAPES = ("ellipse", "box")


@dataclass(frozen=True)
class DetectorSettings:
    """How the detector turns network outputs into faces."""

    score_threshold: float | None = setting(None, "minimum face score (default: the model's recommended value, else 0.5)")
    nms_iou: float = setting(0.4, "IoU above which NMS suppresses the lower-scored box")
    top_k: int = setting(5000, "candidates kept (by score) before NMS")
    keep_top_k: int = setting(750, "detections kept after NMS")
    box_voting: bool = setting(True, "kept boxes and landmarks become the score-weighted mean of the boxes they suppress "
                               "(--no-box-voting: plain greedy NMS, the released FeatherFace/RetinaFace behaviour)")
    long_side: int | None = setting(640, "resize so the long side has this many pixels (>= 32); 0 = original size")
    refine_landmarks: bool = setting(True, "read each face's landmarks again in a second look where the face is 96 px "
                                     "(boxes unchanged; --no-refine-landmarks: the first look's points, about 5 ms "
                                     "per face faster)")


@dataclass(frozen=True)
class AnonymizeSettings:
    """Which faces are masked and how: recall first (module docstring)."""

    score_threshold: float = setting(0.025, "minimum face score of a masked face (recall first)")
    second_pass: int | str | None = setting("full", "detect again at this long side and mask the faces of both passes: "
                                            "small faces the first pass misses. 'full': at the image's own size, for "
                                            "images over 1.5 times --long-side (0: one pass)")
    flip: bool = setting(False, "also detect on the mirrored image")
    mode: str = setting("blur", "how a face is hidden", choices=MODES)
    shape: str = setting("ellipse", "mask shape: the ellipse inscribed in the grown box, or the box", choices=SHAPES)
    pad: float = setting(0.15, "mask growth on every side, as a share of the face box")
    detail: int = setting(8, "blur: samples across a face; pixelate: blocks across (the same for every face size)")
    color: tuple[int, int, int] = setting((0, 0, 0), "--mode solid fill colour, B G R")
    hold: int = setting(5, "videos: keep a face seen in two frames or more masked this many frames after it was last "
                        "detected")


@dataclass(frozen=True)
class PassRules:
    """How several detection passes of one image combine (``FaceDetector.detect_passes``)."""

    #: candidate caps (top_k, keep_top_k) hold for this input area and grow beyond it
    pass_area: int = 640 * 640
    #: a pass with another at this many times its resolution keeps only faces of
    #: ``coarse_min_face`` px or more at its own scale (chosen on 4K frames of training-pool photos:
    #: it removed all of the coarse pass's false masks and none of its faces)
    finer_pass: float = 1.5
    coarse_min_face: int = 24
    #: ``second_pass="full"`` adds a pass at the image's own size when its long side is more than
    #: this many times the first pass's (README, "Anonymise")
    full_pass_above: float = 1.5


@dataclass(frozen=True)
class LookRules:
    """The second look that reads each face's landmarks again (``featherface.core.refine``).

    Chosen on 500 Caltech WebFaces photos of the training pool (human-marked points), never on the
    landmark dev set or the benchmarks: face 80 to 112 px x crop 1.25 to 1.75 box sides gave 0.120
    to 0.138 of the inter-ocular distance against 0.153 for the first look; 96 px and 1.5 were best
    there and on the dev set (``docs/experiments.md``). Nano's landmarks (since 1.1) were fine-tuned on
    crops made by these rules (``scripts/finetune_landmarks.py --look-share``)."""

    #: the face's box side in the crop, in pixels (Nano's points are most precise around here)
    face_px: int = 96
    #: crop side as a multiple of the box side: context for the detector
    context: float = 1.5
    #: score a re-detected face needs: the face is known to be there, and the IoU with the first
    #: look's box (``min_iou``) decides which detection it is
    score_threshold: float = 0.02
    min_iou: float = 0.5


DETECTOR = DetectorSettings()
LOOK = LookRules()
ANONYMIZE = AnonymizeSettings()
PASSES = PassRules()


def help_of(cls: type, name: str) -> str:
    """The help text of a settings field."""
    return next(f.metadata["help"] for f in fields(cls) if f.name == name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def page_settings() -> dict[str, dict[str, Any]]:
    """The defaults as the page's JavaScript names them (``config.json``): ``detector``,
    ``anonymize``, ``passes`` and ``look``, camelCase keys. The page holds no default number of its own."""
    anonymize = {_camel(k): v for k, v in asdict(ANONYMIZE).items()}
    anonymize["color"] = "#{:02x}{:02x}{:02x}".format(*reversed(ANONYMIZE.color))  # B G R -> CSS
    return {"detector": {_camel(k): v for k, v in asdict(DETECTOR).items() if k != "score_threshold"},
            "anonymize": anonymize, "passes": {_camel(k): v for k, v in asdict(PASSES).items()},
            "look": {_camel(k): v for k, v in asdict(LOOK).items()}}
