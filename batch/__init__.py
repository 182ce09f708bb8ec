"""Batch processing of many videos on Ray: ``python main.py batch INPUT... --out DIR``.

A folder of recordings outgrows a shell loop over the headless command: every call reloads the model,
one bad file stops the loop, nothing records what is done, and one machine is the limit. This package
runs the same per-video frame loop (:func:`core.headless.process_video`) inside Ray actors that load the
model once, keeps a manifest so a rerun only does what is missing, and never leaves a half file that
looks complete.

Modules, one job each: :mod:`batch.inputs` (which videos, and where each one's outputs go),
:mod:`batch.manifest` (what is done, under which model and settings), :mod:`batch.job` (one video:
staging, the frame loop, the final rename), :mod:`batch.pool` (Ray actors, sizing and retries),
:mod:`batch.cli` (arguments, progress bar, summary, exit codes).
"""
