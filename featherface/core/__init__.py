"""The torch-free detector library: numpy, Pillow and one engine (onnxruntime or OpenVINO).

Detection (:mod:`.detector`), pre- and post-processing, image operations, masks, alignment and
the bundled weights live here; nothing in this package imports torch or OpenCV, directly or through
another module (``tests/test_layers.py`` checks it). The applications built on it (batch runs,
video, Ray, the servers) are :mod:`featherface.apps`; the torch side (networks, export, training)
sits outside both and comes with the ``[torch]`` / ``[train]`` extras.
"""
