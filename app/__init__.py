"""The AnchorFace Live desktop app (PyQt6): windows, threads and dialogs around the core pipeline.

It only wires: capture, processing, drawing and recording are ``core``; this package decides which
thread does what and turns it into something a person can click.
"""
