"""Per-source label offsets: where a source's annotators put a point, against the 300-W sources.

The shared sources disagree about where a landmark is (data README, "Coordinate convention"): 300-W
and menpo have a known origin and were converted exactly, but MERL-RAV was mapped into its crops by a
5-point fit and infanface / 300W-LP never said which origin they use. A network trained on all of them
learns a compromise and is systematically off on every one. This module measures each such source's
constant offset once and moves its training targets by it, so every source speaks 300-W's convention.

    python -m training.label_offsets --model runs/cal_300w/best.pt --data ../shared/data \\
        --source merl_rav_aflw --source infanface --source 300wlp_mmpose --out assets/label_offsets.json

Measured with a model trained on the 300-W sources only (it has not learned the others' habits): for a
source s, offset_s = mean signed error on s − mean signed error on the 300-W training faces. If the
model puts a point at 300-W's position T + a and s labels it T + b, s's mean signed error is a − b (plus
the model's own error, which the 300-W term cancels), so ``label + offset_s`` is T + a: the source's
labels moved into 300-W's convention.

Offsets are fractions of the inter-ocular distance (so one number serves faces of every size) and are
applied in source-image coordinates, before any crop, rotation or flip: a flipped copy of a face gets
the mirrored offset through the same affine map as its points, so the model stays mirror-consistent.
A face whose outer eye corner is hidden has no inter-ocular distance; it gets the source's median
ratio of inter-ocular distance to landmark-box diagonal times its own diagonal.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.offline.datasets import FaceRecord, select_split, read_dataset
from core.offline.evaluation import evaluate, report
from core.offline.metrics import normaliser
from core.schemes import get_scheme

#: Sources whose origin is known and converted exactly (data README); the reference, fixed at zero.
REFERENCE_SOURCES = ("300w_afw", "300w_helen_train", "300w_lfpw_train")
#: A source with fewer measured faces than this gets no offset: a mean of a handful is mostly noise.
MIN_FACES = 20


def load_offsets(path: str | Path) -> dict[str, tuple[float, float]]:
    """``{source: (dx, dy)}`` in fractions of the inter-ocular distance, from a file this tool wrote."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {source: (float(v["dx"]), float(v["dy"])) for source, v in data["offsets"].items()}


def inter_ocular_scale(records: list[FaceRecord]) -> np.ndarray:
    """``[N]`` each face's inter-ocular distance, estimated from its box diagonal where a corner is hidden."""
    if not records:
        return np.zeros(0)
    scheme = get_scheme(records[0].scheme)
    gt = np.stack([r.landmarks for r in records]).astype(np.float64)
    iod = normaliser(gt, scheme, "inter_ocular")
    diagonal = normaliser(gt, scheme, "box_diagonal")
    a, b = scheme.outer_eye_corners
    has_iod = np.isfinite(gt[:, [a, b]]).all(axis=(1, 2))
    ratio = float(np.median(iod[has_iod] / diagonal[has_iod])) if has_iod.any() else 1.0
    return np.where(has_iod, iod, diagonal * ratio)


def apply_offsets(records: list[FaceRecord], offsets: dict[str, tuple[float, float]]) -> list[FaceRecord]:
    """Records of the listed sources with their landmarks moved by ``offset × inter-ocular distance``
    (hidden points stay NaN); other records are returned unchanged."""
    out = list(records)
    for source, offset in offsets.items():
        index = [i for i, r in enumerate(records) if r.source == source]
        scale = inter_ocular_scale([records[i] for i in index])
        for i, s in zip(index, scale):
            moved = (records[i].landmarks + np.asarray(offset) * s).astype(np.float32)
            out[i] = replace(records[i], landmarks=moved)
    return out


def measure_offsets(per_source_bias: dict[str, tuple[float, float, int]], sources: list[str],
                    reference: tuple[str, ...] = REFERENCE_SOURCES) -> dict[str, dict[str, float]]:
    """Offsets from per-source ``(mean dx, mean dy, faces)``: each source's bias minus the reference
    sources' face-weighted bias. Sources with fewer than ``MIN_FACES`` faces are left out."""
    ref = [per_source_bias[s] for s in reference if s in per_source_bias]
    if not ref:
        raise ValueError(f"no faces of the reference sources {', '.join(reference)}")
    weights = np.array([n for _, _, n in ref], dtype=float)
    ref_bias = (np.array([(dx, dy) for dx, dy, _ in ref]) * weights[:, None]).sum(axis=0) / weights.sum()
    found = {}
    for source in sources:
        if source not in per_source_bias or per_source_bias[source][2] < MIN_FACES:
            continue
        dx, dy, n = per_source_bias[source]
        found[source] = {"dx": float(dx - ref_bias[0]), "dy": float(dy - ref_bias[1]), "faces": int(n)}
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a model trained on the reference (300-W) sources only")
    p.add_argument("--data", required=True, help="dataset folder (the shared layout)")
    p.add_argument("--source", action="append", required=True, help="source to measure (repeatable)")
    p.add_argument("--split", default="train", help="part of the repository split measured (default: train)")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)
    from training.predictors import open_predictor  # torch: only for this command, not for apply_offsets

    predictor = open_predictor(args.model, "auto")
    records = [r for r in select_split(read_dataset(args.data), args.split)
               if r.scheme == predictor.scheme and r.source in {*REFERENCE_SOURCES, *args.source}]
    per_source = report(evaluate(predictor, records))["per_source"]
    bias = {source: (row["dx"], row["dy"], row["n"]) for source, row in per_source.items()}
    offsets = measure_offsets(bias, args.source)
    document = {"unit": "fraction of the inter-ocular distance; label + offset moves a source into 300-W's "
                        "convention (applied in source-image coordinates, before crop, rotation and flip)",
                "measured_with": str(args.model), "split": args.split, "reference": list(REFERENCE_SOURCES),
                "reference_bias": {s: {"dx": bias[s][0], "dy": bias[s][1], "faces": bias[s][2]}
                                   for s in REFERENCE_SOURCES if s in bias},
                "offsets": offsets}
    Path(args.out).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    for source, v in offsets.items():
        print(f"{source}: dx {100 * v['dx']:+.2f} %  dy {100 * v['dy']:+.2f} % of the inter-ocular distance ({v['faces']} faces)")
    skipped = sorted(set(args.source) - set(offsets))
    if skipped:
        print(f"no offset (fewer than {MIN_FACES} faces or none): {', '.join(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
