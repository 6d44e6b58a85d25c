"""Model definitions: FeatherFace V1 (teacher), FeatherFace Nano (student), RetinaFace-MobileNet0.25 (baseline)."""
from .retinaface import RetinaFaceMobileNet
from .featherface import ARCHITECTURES, FeatherFaceNano, FeatherFaceV1, build_model, count_parameters, parameter_breakdown

__all__ = ["ARCHITECTURES", "FeatherFaceNano", "FeatherFaceV1", "build_model", "count_parameters", "parameter_breakdown", "RetinaFaceMobileNet"]
