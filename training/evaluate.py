"""Evaluate a model with the paper's metrics on any dataset layout core's readers know.

    python -m training.evaluate --model FILE --data DIR [--split val|val_new|train|all]
                                [--strategy weighted|argmax|mean] [--threshold 0.6] [--crops gt|auto|short|full|haar]
                                [--flip-average] [--label-offsets FILE] [--json OUT] [--plot CED.png]

FILE is an exported ``.onnx`` (run through core.runtime, exactly as the app runs it) or a training
checkpoint. The protocol itself is torch-free and lives in core.offline.evaluation: faces are cropped from their
ground-truth landmark box (the standard protocol) with the crop policy recorded in the model;
``--crops auto|short|full|haar`` crops from the calibrated box of that detector instead, as the app does on a
first frame (faces it misses are counted and left out). Prints N, NME (inter-ocular, %; faces without
both outer eye corners fall back to the box diagonal and the table says how many), FR@0.1, AUC@0.1, the
mean signed error dx/dy (% of the normaliser: a systematic offset NME cannot show), the eyelid points'
NME, and the
Pearson correlation between anchor confidence and anchor error, per source, for the turned faces (with
the share the tracker would keep) and overall; ``--plot`` writes a CED plot.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from core.offline.datasets import SPLIT_PARTS, DatasetError
from core.decode import DEFAULT_THRESHOLD, STRATEGIES
from core.detection import DETECTORS
from core.offline.evaluation import CropsFrom, DetectorCrops, FlipAveraged, evaluate, format_table, ground_truth_crop, load_records, plot_ced, report, \
    yaw_buckets
from training.label_offsets import apply_offsets, load_offsets
from training.predictors import open_predictor

log = logging.getLogger("training.evaluate")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="exported .onnx file or training checkpoint (.pt)")
    p.add_argument("--data", required=True, help="dataset folder or WFLW annotation file")
    p.add_argument("--split", choices=[*SPLIT_PARTS, "all"], default="val",
                   help="part of the repository split to use (ignored for datasets it does not cover)")
    p.add_argument("--strategy", choices=STRATEGIES, default="weighted", help="anchor aggregation")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="confidence threshold C_th of 'weighted'")
    p.add_argument("--crops", choices=["gt", *DETECTORS], default="gt",
                   help="crop from the ground-truth landmark box (standard) or from the calibrated box of one "
                        "of the app's detectors")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch-size", type=int, default=32, help="faces per inference call")
    p.add_argument("--label-offsets", metavar="FILE",
                   help="score against labels moved by these per-source offsets (training.label_offsets), i.e. in "
                        "300-W's convention, as a model trained with them is meant to place points")
    p.add_argument("--flip-average", action="store_true",
                   help="also run each mirrored crop and average both passes (flip test-time averaging; 2x the model time)")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N faces (quick checks)")
    p.add_argument("--json", help="write the numbers (n, nme, fr, auc, pearson, per_source) to this file")
    p.add_argument("--plot", help="write a CED plot to this PNG (default: no plot)")
    args = p.parse_args(argv)
    try:
        predictor = open_predictor(args.model, args.device)
        predictor = FlipAveraged(predictor) if args.flip_average else predictor
        records = load_records(args.data, args.split, predictor.scheme)
        records = records[:args.limit] if args.limit else records
        crop = ground_truth_crop if args.crops == "gt" else DetectorCrops(args.crops)
        if args.label_offsets:  # the truth moves, the crop stays where the shared labels put it
            crop = CropsFrom(records) if args.crops == "gt" else crop
            records = apply_offsets(records, load_offsets(args.label_offsets))
    except (DatasetError, ValueError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"error: {args.data} has no {predictor.scheme} faces", file=sys.stderr)
        return 2
    result = evaluate(predictor, records, args.strategy, args.threshold, args.batch_size, crop)
    numbers = report(result, yaw_buckets(args.data))
    print(f"{args.model} on {args.data} ({args.split}, {args.strategy}, C_th {args.threshold}, {args.crops} crops"
          f"{', flip-averaged' if args.flip_average else ''}"
          f"{f', labels moved by {args.label_offsets}' if args.label_offsets else ''})")
    if result.missed:
        print(f"the {args.crops} detector missed {result.missed} of {len(records)} faces (left out below)")
    print(format_table(numbers))
    if args.plot:
        plot_ced({Path(args.model).stem: result.nmes}, args.plot, f"{Path(args.data).name} ({args.split})")
        print(f"CED plot: {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
