"""FeatherFace: tiny face detectors (boxes, scores, five landmarks) for CPUs, browsers and edge devices.

The public surface. Importing it loads no deep-learning framework and no OpenCV: detection runs on
numpy, Pillow and onnxruntime (or OpenVINO). ``build_model`` (the PyTorch networks) needs the ``[torch]``
extra and is imported on first use.
"""
from importlib.metadata import version

from .core.align import align_face, crop_face
from .core.anonymize import anonymize
from .core.constants import LANDMARK_NAMES
from .core.files import read_image
from .core.detector import FaceDetector
from .core.postprocess import Detection, Detections

__all__ = ["FaceDetector", "Detection", "Detections", "LANDMARK_NAMES", "anonymize", "align_face", "crop_face", "read_image",
           "build_model"]
__version__ = version("featherface")  # the one version, pyproject.toml's


def __getattr__(name: str):
    if name == "build_model":  # torch side, imported only when asked for
        from .core.runners import require

        require("torch", "torch")
        from .models import build_model

        return build_model
    raise AttributeError(f"module 'featherface' has no attribute {name!r}")
