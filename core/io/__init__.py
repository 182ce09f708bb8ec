"""Frames in and results out: video sources, the recording sink and its CSV table, OSC streaming."""
