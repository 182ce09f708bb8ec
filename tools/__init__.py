"""Offline tools that regenerate the shipped assets (detector calibration, 3D mean face); never
imported at run time, so core stays free of the dataset readers."""
