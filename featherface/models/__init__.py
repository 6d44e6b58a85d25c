"""Model definitions: FeatherFace V1 (teacher), FeatherFace Nano (student)."""
from .featherface import ARCHITECTURES, FeatherFaceNano, FeatherFaceV1, build_model, count_parameters, parameter_breakdown

__all__ = ["ARCHITECTURES", "FeatherFaceNano", "FeatherFaceV1", "build_model", "count_parameters", "parameter_breakdown"]
