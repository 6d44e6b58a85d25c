"""The torch-free inference core: numpy, OpenCV and one engine (onnxruntime or OpenVINO).

Everything a user needs to detect, anonymise and crop faces lives here; nothing in this package
imports torch, directly or through another module (``tests/test_layers.py`` checks it). The torch
side of the project (model definitions, losses, training, export, conversion) sits outside it and
is installed with the ``[torch]`` / ``[train]`` extras.
"""
