"""Torch modules: the ShuffleNetV2 backbone, the AnchorFace and direct-regression heads, the losses.

With training/ this is the only place that imports torch; run time uses the exported ONNX file.
"""
