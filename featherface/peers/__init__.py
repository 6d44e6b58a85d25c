"""Other face detectors, for side-by-side comparison (``featherface benchmark --peers``).

Optional: needs ``onnxruntime`` (and ``onnx`` for parameter counts), installed with the ``onnx``
extra. Not imported by the core detection path.
"""
from .runners import PEER_FILES, SCRFD, PeerRunner, UltraLight, YuNet, load_peers, onnx_parameter_count

__all__ = ["PEER_FILES", "SCRFD", "PeerRunner", "UltraLight", "YuNet", "load_peers", "onnx_parameter_count"]
