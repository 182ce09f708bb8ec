"""Side-by-side benchmarks (speed, accuracy, stability) against MediaPipe Face Mesh and dlib.

Each module is a CLI (``python -m benchmarks.speed`` …) that prints one table and appends a dated
section to ``benchmarks/RESULTS.md``.
"""
