"""AnchorFace core: the pure numpy/OpenCV library shared by training, the app, the CLI and benchmarks.

Nothing in this package imports Qt or torch (see docs/architecture.md, "Dependency rule").
"""
