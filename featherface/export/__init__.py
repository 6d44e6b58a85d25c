"""From checkpoints to graphs (the ``[torch]`` extra): ONNX export with a parity check
(:mod:`.graph`), static INT8 quantisation (:mod:`.quantize`), and the PyTorch runner that serves a
checkpoint to the detector, directly or exported in memory for a graph engine (:mod:`.torch_runner`)."""
