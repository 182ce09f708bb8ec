"""Train AnchorFace (or the direct-regression baseline) on any dataset layout core's readers know.

    python -m training.train --data ../shared/data --out runs/NAME [options]

Defaults follow the paper (Adam, wd 1e-5, lr 1e-3 ÷10 at epochs 20/30/40, 50 epochs, batch 32, 224 px).
``--input-size`` trains at 128/160/192 px with the same geometry in fractions of the crop;
``--init FILE`` starts from a checkpoint or from an exported ``.onnx`` (moved to ``--input-size``);
``--schedule cosine`` replaces the step schedule. Writes ``log.csv`` (per epoch: losses, val NME/FR, lr,
seconds, images/s, and the validation's mean signed error dx/dy and eyelid NME), ``curves.png``,
``best.pt`` (lowest val NME), ``last.pt`` (every epoch) and ``templates.npz``. With ``--ema-decay`` (on by
default) the validated, best and exported weights are the exponential moving average of the trained
ones (training/ema.py); ``last.pt`` holds both. ``--label-offsets FILE`` moves the listed sources'
targets into 300-W's convention first (training/label_offsets.py). ``--resume`` continues from
``last.pt`` with the arguments given again. Under
``torchrun`` it trains with DistributedDataParallel (one process per GPU) without further changes.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from core.anchors import AnchorConfig, anchor_area, anchor_grid, build_templates, save_templates
from core.offline.datasets import DatasetError, FaceRecord, read_dataset, select_split
from core.geometry import INPUT_SIZE, INPUT_SIZES
from core.decode import aggregate
from core.offline.evaluation import summarise
from core.offline.metrics import eyelid_nme, nme, signed_errors
from core.schemes import LandmarkScheme, get_scheme
from models.anchorface import ModelConfig, build_model
from models.losses import LossConfig, LossTerms, anchorface_loss, direct_loss
from training.augment import AugmentConfig
from training.checkpoint import load_model_from_checkpoint, read_checkpoint, save_checkpoint
from training.data import FaceDataset, cv2_threads_off, to_tensor
from training.ema import WeightAverage
from training.eye_aux import EyeOpenness, eye_openness_loss
from training.label_offsets import apply_offsets, load_offsets
from training.augment import crop_with_jitter
from training.onnx_init import OnnxInitError, model_from_onnx, recalibrate_batch_norm

log = logging.getLogger("training.train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder or WFLW annotation file (any layout core.offline.datasets reads)")
    p.add_argument("--out", required=True, help="run folder for logs, plots and checkpoints")
    p.add_argument("--val-data", help="separate validation dataset; default: the repository split of --data "
                                       "(assets/split.json), or 10%% of --data by photo if the split does not cover it")
    p.add_argument("--model-type", choices=["anchorface", "direct"], default="anchorface",
                   help="AnchorFace (anchors + confidences) or the direct-regression baseline")
    p.add_argument("--width", type=float, default=1.0, choices=[0.5, 1.0, 1.5, 2.0], help="ShuffleNetV2 width multiplier")
    p.add_argument("--head-channels", type=int, default=256, help="bottleneck channels of the AnchorFace head")
    p.add_argument("--templates", choices=["kmeans", "handdesign"], default="kmeans", help="how base shapes are made")
    p.add_argument("--num-base", type=int, default=3, help="base shapes (3 in the paper)")
    p.add_argument("--num-rolls", type=int, default=8, help="roll rotations per base shape (8 × 45° in the paper)")
    p.add_argument("--input-size", type=int, default=INPUT_SIZE, choices=INPUT_SIZES,
                   help="model input side in px; the anchor grid (size/32) and area (size/4) follow it")
    p.add_argument("--epochs", type=int, default=50, help="training epochs")
    p.add_argument("--milestones", type=int, nargs="*", default=[20, 30, 40], help="epochs at which lr is divided by 10")
    p.add_argument("--schedule", choices=["step", "cosine"], default="step",
                   help="step: ÷10 at --milestones (the paper); cosine: from --lr to 0 over --epochs")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-5, help="Adam weight decay")
    p.add_argument("--warmup-epochs", type=float, default=1.0, help="linear lr warm-up (epochs) for a stable start from scratch")
    p.add_argument("--batch-size", type=int, default=32, help="batch size per process")
    p.add_argument("--beta", type=float, default=0.05, help="confidence target sharpness β")
    p.add_argument("--lam", type=float, default=0.5, help="weight λ of the confidence loss")
    p.add_argument("--reg-power", type=float, default=1.0,
                   help="regression weight C̄^p: p > 1 focuses the offset loss on the anchors decoding uses")
    p.add_argument("--wing", type=float, default=0.0, metavar="W",
                   help="Wing loss width w in crop px (models/losses.py): errors below w pull w/ε times harder; 0: L1")
    p.add_argument("--wing-curvature", type=float, default=1.0, metavar="EPS", help="Wing loss ε in crop px")
    p.add_argument("--eyelid-weight", type=float, default=1.0,
                   help="weight of the eyelid points in the regression loss (> 1 teaches blinks; see models/losses.py)")
    p.add_argument("--eye-aux-weight", type=float, default=0.0,
                   help="weight of an auxiliary loss that asks the pooled features for each eye's opening "
                        "(training/eye_aux.py: makes the backbone see blinks; nothing of it is exported); 0: off")
    for f in fields(AugmentConfig):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=float, default=f.default, help=f"augmentation: {f.name}")
    p.add_argument("--workers", type=int, default=1, help="data-loading worker processes")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed for templates, augmentation and initialisation")
    p.add_argument("--max-train", type=int, default=0, help="use only the first N training faces (smoke tests)")
    p.add_argument("--epoch-size", type=int, default=0,
                   help="faces drawn per epoch (0: all); smaller epochs validate and checkpoint more often")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", help="start from this checkpoint's or exported .onnx file's weights and templates "
                                  "(fresh optimizer and schedule); an .onnx file is moved to --input-size")
    p.add_argument("--exclude-source", action="append", default=[], metavar="SOURCE",
                   help="leave this data source out of training (repeatable), e.g. infanface")
    p.add_argument("--source-weight", action="append", default=[], metavar="SOURCE=W",
                   help="sample this source W times as often as the others (repeatable), e.g. merl_rav_aflw=0.5")
    p.add_argument("--label-offsets", metavar="FILE",
                   help="per-source label offsets (python -m training.label_offsets) applied to the training targets")
    p.add_argument("--ema-decay", type=float, default=0.998,
                   help="decay of the weights' moving average that is validated and exported, per step (0: off)")
    return p.parse_args(argv)


def split_records(args: argparse.Namespace) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """Train/val records: the repository split, a separate --val-data, or a photo-level fallback."""
    records = read_dataset(args.data)
    if args.val_data:
        return records, read_dataset(args.val_data)
    train, val = select_split(records, "train"), select_split(records, "val")
    if not train or not val:
        log.warning("assets/split.json does not cover %s; holding out every 10th face as validation", args.data)
        train, val = [r for i, r in enumerate(records) if i % 10], records[::10]
    return train, val


def main_scheme_only(records: list[FaceRecord], scheme: str) -> list[FaceRecord]:
    return [r for r in records if r.scheme == scheme]


def source_weights(records: list[FaceRecord], specs: list[str]) -> np.ndarray | None:
    """Per-record sampling weights from ``SOURCE=W`` options (None: uniform sampling)."""
    if not specs:
        return None
    weights = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"--source-weight {spec!r}: expected SOURCE=NUMBER") from None
    unknown = set(weights) - {r.source for r in records}
    if unknown:
        raise ValueError(f"--source-weight: no training faces from {', '.join(sorted(unknown))}")
    return np.array([weights.get(r.source, 1.0) for r in records])


def build_initial_model(args: argparse.Namespace, train_set: FaceDataset, out: Path,
                        device: torch.device) -> tuple[torch.nn.Module, ModelConfig]:
    """A fresh model (templates from the training shapes), a checkpoint's, or an exported file's."""
    if args.init and Path(args.init).suffix.lower() == ".onnx":
        model, config = model_from_onnx(args.init, args.input_size)
        crops = torch.stack([to_tensor(crop_with_jitter(img, pts, None, train_set.augment_config, args.input_size)[0])
                             for img, pts in train_set.cached[:64]])
        recalibrate_batch_norm(model, crops)
        log.info("initialised from %s at %d px", args.init, args.input_size)
        return model.to(device), config
    if args.init:
        model, config, _ = load_model_from_checkpoint(args.init)
        log.info("initialised from %s (its architecture and templates)", args.init)
        return model.to(device), config
    scheme = train_set.scheme
    anchor_config = AnchorConfig(input_size=args.input_size, grid=anchor_grid(args.input_size),
                                 area=anchor_area(args.input_size), num_base=args.num_base,
                                 num_rolls=args.num_rolls, method=args.templates, seed=args.seed)
    shapes = train_set.policy_shapes()
    if args.model_type == "anchorface":
        prior = build_templates(shapes, scheme, anchor_config)
        save_templates(out / "templates.npz", prior, anchor_config, scheme)
    else:
        prior = np.nanmean(shapes, axis=0)  # each point averaged over the faces that show it
    config = ModelConfig.for_input_size(args.input_size, model_type=args.model_type, scheme=scheme.name,
                                        num_points=scheme.num_points, width=args.width,
                                        num_templates=anchor_config.num_templates, head_channels=args.head_channels)
    return build_model(config, prior).to(device), config


def setup_distributed() -> tuple[int, int, torch.device]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        local = int(os.environ["LOCAL_RANK"])
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
        return dist.get_rank(), world, device
    return 0, 1, torch.device("cpu")


def resolve_device(name: str, distributed_device: torch.device, world: int) -> torch.device:
    if world > 1:
        return distributed_device
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(epoch_float: float, args: argparse.Namespace) -> float:
    """Step or cosine schedule with a linear warm-up (epoch_float counts fractional epochs)."""
    if args.schedule == "cosine":
        lr = args.lr * 0.5 * (1.0 + math.cos(math.pi * min(epoch_float / args.epochs, 1.0)))
    else:
        lr = args.lr * 0.1 ** sum(epoch_float >= m for m in args.milestones)
    if args.warmup_epochs > 0 and epoch_float < args.warmup_epochs:
        lr *= (epoch_float + 1e-3) / args.warmup_epochs
    return lr


@dataclass
class EyeAux:
    """The auxiliary eye-openness head (``training/eye_aux.py``), its loss weight and the scheme's eyes."""

    head: EyeOpenness
    weight: float
    scheme: LandmarkScheme


def train_step(net: torch.nn.Module, model: torch.nn.Module, config: ModelConfig, optimizer: torch.optim.Optimizer,
               images: torch.Tensor, targets: torch.Tensor, loss_config: LossConfig,
               eye_aux: EyeAux | None = None) -> LossTerms:
    """One optimiser step on a batch (``net`` may be the DDP wrapper of ``model``)."""
    if eye_aux is None:
        landmarks, logits = net(images)
    else:
        landmarks, logits, features = net(images, with_features=True)
    terms = (anchorface_loss(landmarks, logits, model.placed_templates, targets, loss_config)
             if config.model_type == "anchorface" else direct_loss(landmarks, targets, loss_config))
    total = terms.total
    if eye_aux is not None:
        total = total + eye_aux.weight * eye_openness_loss(eye_aux.head(features), targets, eye_aux.scheme)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return terms


@torch.no_grad()
def validate(model: torch.nn.Module, loader: DataLoader, scheme_name: str, device: torch.device) -> dict[str, float]:
    """Val NME (inter-ocular, weighted aggregation at C_th 0.6) — the same decoding the app uses — with
    the mean signed error (dx, dy; a label-convention mismatch shows there, not in NME) and the eyelid
    points' NME (the points blinks move)."""
    model.eval()
    preds, truths = [], []
    for images, targets in loader:
        landmarks, logits = model(images.to(device))
        agg = aggregate(landmarks.cpu().numpy(), torch.sigmoid(logits).cpu().numpy())
        preds.append(agg.landmarks)
        truths.append(targets.numpy())
    scheme = get_scheme(scheme_name)
    pred, truth = np.concatenate(preds), np.concatenate(truths)
    scores = summarise(nme(pred, truth, scheme), bias=signed_errors(pred, truth, scheme),
                       eyelids=eyelid_nme(pred, truth, scheme))
    return {"val_nme": scores.nme, "val_fr": scores.fr, "val_dx": scores.dx, "val_dy": scores.dy,
            "val_eyelid": scores.eyelid}


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, [r["train_loss"] for r in rows], label="total")
    a.plot(epochs, [r["train_reg"] for r in rows], label="regression")
    a.plot(epochs, [r["train_con"] for r in rows], label="confidence")
    a.set_xlabel("epoch"), a.set_ylabel("train loss"), a.set_yscale("log"), a.legend(), a.grid(alpha=0.3)
    b.plot(epochs, [100 * r["val_nme"] for r in rows], color="C3")
    b.set_xlabel("epoch"), b.set_ylabel("val NME (inter-ocular, %)"), b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    rank, world, dist_device = setup_distributed()
    device = resolve_device(args.device, dist_device, world)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + rank)
    cv2_threads_off()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    try:
        train_records, val_records = split_records(args)
        scheme_name = train_records[0].scheme
        train_records = [r for r in main_scheme_only(train_records, scheme_name) if r.source not in args.exclude_source]
        val_records = main_scheme_only(val_records, scheme_name)
        if args.max_train:
            train_records = train_records[:args.max_train]
        weights = source_weights(train_records, args.source_weight)
        if args.label_offsets:
            offsets = load_offsets(args.label_offsets)
            train_records = apply_offsets(train_records, offsets)
            log.info("label offsets (%% inter-ocular) from %s: %s", args.label_offsets,
                     ", ".join(f"{k} ({100 * dx:+.2f}, {100 * dy:+.2f})" for k, (dx, dy) in offsets.items()))
    except (DatasetError, ValueError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    augment_config = AugmentConfig(**{f.name: getattr(args, f.name) for f in fields(AugmentConfig)})
    train_set = FaceDataset(train_records, True, augment_config, args.seed, args.input_size)
    val_set = FaceDataset(val_records, False, input_size=args.input_size)
    log.info("%s: %d train / %d val faces (%s), %d px, device %s, world %d", args.data, len(train_set),
             len(val_set), scheme_name, args.input_size, device, world)
    try:
        model, config = build_initial_model(args, train_set, out, device)
    except OnnxInitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if config.input_size != args.input_size:
        print(f"error: {args.init} is a {config.input_size} px model; pass --input-size {config.input_size}",
              file=sys.stderr)
        return 2
    eye_aux = None
    if args.eye_aux_weight > 0:
        if config.model_type != "anchorface" or world > 1:
            print("error: --eye-aux-weight needs an anchorface model trained in one process", file=sys.stderr)
            return 2
        eye_aux = EyeAux(EyeOpenness(config.head_channels).to(device),
                         args.eye_aux_weight, train_set.scheme)
    parameters = list(model.parameters()) + (list(eye_aux.head.parameters()) if eye_aux else [])
    optimizer = torch.optim.Adam(parameters, lr=args.lr, weight_decay=args.weight_decay)
    loss_config = LossConfig.for_input_size(config.input_size, beta=args.beta, lam=args.lam,
                                            regression_power=args.reg_power, wing_width=args.wing,
                                            wing_curvature=args.wing_curvature,
                                            emphasised_points=train_set.scheme.eyelids, emphasis=args.eyelid_weight)

    average = WeightAverage(model, args.ema_decay) if args.ema_decay else None
    start_epoch, best, history = 0, math.inf, []
    if args.resume:
        state = read_checkpoint(out / "last.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if average is not None and "ema" in state:
            average.load_state_dict(state["ema"])
        if eye_aux is not None and "eye_aux" in state:
            eye_aux.head.load_state_dict(state["eye_aux"])
        start_epoch, best, history = int(state["epoch"]), float(state["best_nme"]), list(state["history"])
        log.info("resumed from %s at epoch %d", out / "last.pt", start_epoch)

    generator = torch.Generator().manual_seed(args.seed)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else model
    if world > 1:
        sampler = DistributedSampler(train_set, seed=args.seed)
    elif weights is not None or args.epoch_size:
        draw = torch.as_tensor(weights if weights is not None else np.ones(len(train_set)))
        sampler = torch.utils.data.WeightedRandomSampler(draw, min(args.epoch_size or len(train_set), len(train_set)),
                                                         replacement=False, generator=generator)
    else:
        sampler = None
    loader_kw = dict(batch_size=args.batch_size, num_workers=args.workers, pin_memory=device.type == "cuda",
                     persistent_workers=False)
    val_loader = DataLoader(val_set, shuffle=False, **loader_kw)
    run_info = {"args": vars(args), "train_faces": len(train_set), "val_faces": len(val_set)}
    if rank == 0:
        (out / "run.json").write_text(json.dumps(run_info, indent=2))

    for epoch in range(start_epoch, args.epochs):
        train_set.epoch = epoch
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        generator.manual_seed(args.seed * 1000 + epoch)  # a resumed run draws the same order as an unbroken one
        loader = DataLoader(train_set, shuffle=sampler is None, sampler=sampler, drop_last=True,
                            generator=generator, **loader_kw)
        net.train()
        sums = np.zeros(3)
        started = time.time()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", disable=rank != 0, leave=False)
        for step, (images, targets) in enumerate(bar):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch + step / len(loader), args)
            terms = train_step(net, model, config, optimizer, images.to(device, non_blocking=True),
                               targets.to(device, non_blocking=True), loss_config, eye_aux)
            if average is not None:
                average.update(model)
            sums += [terms.total.item(), terms.regression.item(), terms.confidence.item()]
            bar.set_postfix(loss=f"{sums[0] / (step + 1):.4f}")
        train_seconds = time.time() - started
        if rank != 0:
            continue
        validated = average.shadow if average is not None else model
        metrics = validate(validated, val_loader, scheme_name, device)
        means = [float(v) for v in sums / len(loader)]  # plain floats: weights_only checkpoints refuse numpy
        row = {"epoch": epoch + 1, "train_loss": means[0], "train_reg": means[1], "train_con": means[2],
               **metrics, "lr": float(optimizer.param_groups[0]["lr"]), "seconds": time.time() - started,
               "images_per_s": len(loader) * args.batch_size / max(train_seconds, 1e-9)}
        history.append(row)
        log.info("epoch %d: loss %.4f  val NME %.2f%%  FR %.1f%%  bias (%+.2f, %+.2f)%%  eyelids %.2f%%  (%.0f s)",
                 row["epoch"], row["train_loss"], 100 * row["val_nme"], 100 * row["val_fr"], 100 * row["val_dx"],
                 100 * row["val_dy"], 100 * row["val_eyelid"], row["seconds"])
        if row["val_nme"] < best:
            best = row["val_nme"]
            save_checkpoint(out / "best.pt", validated, config, epoch=epoch + 1, best_nme=best, history=history,
                            run=json.dumps(run_info))
        extra = {"ema": average.state_dict()} if average is not None else {}
        if eye_aux is not None:
            extra["eye_aux"] = eye_aux.head.state_dict()
        save_checkpoint(out / "last.pt", model, config, optimizer=optimizer.state_dict(), epoch=epoch + 1,
                        best_nme=best, history=history, run=json.dumps(run_info), **extra)
        with (out / "log.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(history)
        plot_curves(history, out / "curves.png")
    if world > 1:
        dist.destroy_process_group()
    if rank == 0:
        log.info("best val NME %.2f%% — checkpoints in %s", 100 * best, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
