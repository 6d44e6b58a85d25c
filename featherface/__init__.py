"""FeatherFace: tiny face detectors (boxes, scores, five landmarks) for CPUs and edge devices."""
from .constants import LANDMARK_NAMES
from .detector import FaceDetector
from .models import build_model
from .postprocess import Detection, Detections

__all__ = ["FaceDetector", "Detection", "Detections", "build_model", "LANDMARK_NAMES"]
__version__ = "0.1.0"
