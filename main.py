"""AnchorFace Live entry point: the desktop window by default, or ``--headless`` video processing.

    python main.py                                   # window: camera 0, or the demo clip if there is none
    python main.py --source clip.mp4 --headless --output out.mp4 --landmarks out.csv
    python main.py --source clip.mp4 --screenshot shot.png --frames 60
"""
from __future__ import annotations

import argparse
import logging
import sys

from pathlib import Path

from core.config import OneLineErrorParser, add_arguments, apply_arguments
from core.pipeline import PipelineConfig
from core.run_options import OutputPaths, RunOptions, add_sink_arguments, positive_int, sink_options
from core.runtime import DEFAULT_MODEL_PATH, PRECISIONS
from core.runtime.precision import PRECISION_HELP


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(prog="python main.py", description="Realtime facial landmarks with AnchorFace.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--source", help="camera index (0, 1, …) or video file; default: camera 0, "
                                    "falling back to the bundled demo clip in the window")
    p.add_argument("--headless", action="store_true", help="process without a window (progress bar and summary)")
    p.add_argument("--output", help="headless: annotated video to write (.mp4, .mov or .mkv); "
                                    "implies --landmarks OUT.csv (and its OUT.json sidecar)")
    p.add_argument("--landmarks", help="headless: landmarks CSV to write, with a JSON sidecar beside it "
                                       "(no video unless --output is given)")
    p.add_argument("--overwrite", action="store_true", help="headless: replace output files that already exist")
    p.add_argument("--model", help="exported AnchorFace .onnx file (default: the bundled model)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"],
                   help="inference device: auto (default) uses CUDA when it really works, else CPU; "
                        "in the window it overrides the saved setting for this run")
    p.add_argument("--precision", choices=PRECISIONS, help=PRECISION_HELP + "; in the window it overrides the "
                                                                          "saved setting for this run")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames (at least 1)")
    p.add_argument("--screenshot", help="window: save a PNG of the window after --frames frames, then exit")
    p.add_argument("--frames", type=int, default=60, help="window: frames to process before --screenshot")
    p.add_argument("--verbose", action="store_true", help="log debug details")
    add_sink_arguments(p.add_argument_group(
        "output options", "the settings dialog's Recording tab; in the window they override the saved settings "
                          "for this run"))
    add_arguments(p.add_argument_group(
        "processing settings", "the settings dialog's Processing tab; in the window they override the saved "
                               "settings for this run"))
    return p


def output_paths(output: str | None, landmarks: str | None) -> OutputPaths:
    """``--output V`` writes V, V's CSV and V's JSON; ``--landmarks C`` alone writes C and C's JSON only."""
    video = Path(output) if output else None
    table = Path(landmarks) if landmarks else (video.with_suffix(".csv") if video else None)
    return OutputPaths(table, table.with_suffix(".json") if table else None, video)


def run_options(args: argparse.Namespace) -> RunOptions:
    """The run the command line asks for (the window takes only what was given, over its saved settings)."""
    return RunOptions(args.source or "0", output_paths(args.output, args.landmarks), sink_options(args),
                      args.overwrite, args.max_frames, Path(args.model) if args.model else DEFAULT_MODEL_PATH,
                      args.device or "auto", apply_arguments(PipelineConfig(), args), args.precision or "auto")


def run_headless_cli(options: RunOptions) -> int:
    """``--headless``: the run, its summary printed, or one ``error:`` line and the run's exit code."""
    from core.headless import HeadlessError, run

    try:
        summary = run(options)
    except HeadlessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for line in summary.lines():
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "batch":  # many videos on Ray: its own arguments, see batch/cli.py
        from batch.cli import main as batch_main

        return batch_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.headless and args.source is None:
        print("error: --headless needs --source (a video file or a camera index)", file=sys.stderr)
        return 2
    options = run_options(args)
    if args.headless:  # core.headless.run checks every option before it opens or creates any file
        return run_headless_cli(options)
    try:  # the window's options checked (the stream host looked up) before it opens
        options.check()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from app.application import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
