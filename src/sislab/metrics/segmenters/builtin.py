"""The builtin segmenter: a small U-Net that sislab trains on any dataset, synthetic included.

The papers' segmenters exist only for Cityscapes, ADE20K and COCO-Stuff; this one makes mIoU and
pixel accuracy available everywhere, at the price of comparability across datasets (its scores
compare methods on one dataset, not with published numbers). A checkpoint is two files: the
state dict (``torch.save``, read back with ``weights_only=True``) and ``<stem>.json`` next to it
with the dataset, the geometry, the training settings, the val scores reached and the state
dict's sha256.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sislab.errors import DataError, WeightsError
from sislab.metrics.provenance import WeightsInfo
from sislab.metrics.segmentation import IGNORE_INDEX, SegmentationScores
from sislab.metrics.segmenters.base import Segmenter, identity_map, load_strict
from sislab.metrics.segmenters.data import Batch, DatasetInfo, dataset_info, load_split
from sislab.metrics.segmenters.evaluate import score_rows
from sislab.metrics.weights import sha256_of

FORMAT = "sislab-builtin-segmenter"
FORMAT_VERSION = 1


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyUNet(nn.Module):
    """U-Net with ``levels`` resolutions, ``width * 2**i`` channels at level ``i``.

    Args:
        num_classes: Output classes.
        width: Channels at full resolution.
        levels: Resolutions (each halves the previous); inputs must be divisible by
            ``2**(levels-1)``, which the segmenter's fixed input size guarantees.
    """

    def __init__(self, num_classes: int, width: int = 16, levels: int = 3) -> None:
        super().__init__()
        chans = [width * 2**i for i in range(levels)]
        self.down = nn.ModuleList(
            _block(3 if i == 0 else chans[i - 1], c) for i, c in enumerate(chans)
        )
        self.up = nn.ModuleList(
            _block(chans[i] + chans[i + 1], chans[i]) for i in range(levels - 1)
        )
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for i in reversed(range(len(self.up))):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([skips[i], x], 1))
        return self.head(x)


@dataclass(frozen=True)
class TrainResult:
    """What ``train_segmenter`` produced.

    Attributes:
        path: The state-dict file.
        meta_path: Its JSON metadata.
        val: Scores on the val split (rows never trained on).
        iterations: Optimiser steps taken.
        seconds: Wall time of training and validation.
    """

    path: Path
    meta_path: Path
    val: SegmentationScores
    iterations: int
    seconds: float


def meta_path_of(path: Path) -> Path:
    """The JSON metadata file next to a builtin segmenter checkpoint."""
    return path.with_suffix(".json")


def default_size(info: DatasetInfo) -> tuple[int, int]:
    """Training size when none is given: a synthetic dataset's own size, else the paper preset's
    output size, else 128x128."""
    from sislab.datasets.presets import DATASET_PRESETS

    if info.size is not None:
        return info.size
    preset = DATASET_PRESETS.get(info.name)
    return (preset.height, preset.width) if preset else (128, 128)


def _tensors(batch: Batch, lut: torch.Tensor, device: torch.device):
    images = torch.from_numpy(batch.images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    labels = lut[torch.from_numpy(batch.labels).long()]
    return images.to(device), labels.to(device)


def _check_size(size: tuple[int, int], levels: int) -> None:
    step = 2 ** (levels - 1)
    if size[0] % step or size[1] % step or min(size) < step:
        raise DataError(
            f"builtin segmenter size {size[0]}x{size[1]} must be a positive multiple of {step}",
            fix=f"pass a size divisible by {step}, e.g. 64",
        )


def train_segmenter(
    dataset_uri: str,
    out: Path | str,
    *,
    split: str = "train",
    val_split: str = "val",
    epochs: int = 30,
    batch_size: int = 16,
    lr: float = 3e-3,
    device: str = "cpu",
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    width: int = 16,
    levels: int = 3,
) -> TrainResult:
    """Train the builtin segmenter on a split of a dataset and score it on another.

    Cross-entropy over the dataset's classes, don't-care pixels ignored; Adam with a cosine
    decay; random horizontal flips. Everything runs in-process (no Ray).

    Args:
        dataset_uri: ``synthetic://...``, a local folder or ``s3://`` prefix with a manifest.
        out: State-dict file to write (its metadata goes to ``<stem>.json``).
        split: Split to train on.
        val_split: Split the reported scores come from.
        epochs: Passes over the training split.
        batch_size: Samples per step.
        lr: Peak learning rate.
        device: Torch device.
        seed: Seed of the initialisation, the row order and the flips.
        size: Square side or ``(H, W)`` the network runs at (default: ``default_size``).
        width: Channels at full resolution.
        levels: U-Net resolutions.

    Returns:
        Paths, val scores, steps and time.

    Raises:
        DataError: Unknown split, a size the U-Net cannot take, or an unreadable dataset.
    """
    begin = time.perf_counter()
    out = Path(out)
    if out.suffix == ".json":
        raise DataError(f"{out} would collide with its own metadata file", fix="use a .pt name")
    info = dataset_info(dataset_uri)
    hw = default_size(info) if size is None else (size, size) if isinstance(size, int) else size
    hw = (int(hw[0]), int(hw[1]))
    _check_size(hw, levels)
    dev = torch.device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    lut = identity_map(info.num_classes, info.dontcare)
    classes = info.num_classes - int(info.dontcare is not None)
    train = load_split(dataset_uri, split, hw)
    val = load_split(dataset_uri, val_split, hw)
    images, labels = _tensors(train, lut, dev)

    net = TinyUNet(classes, width, levels).to(dev)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    total = max(1, epochs * steps_per_epoch)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, total)
    net.train()
    step = 0
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(images))).to(dev)
        for first in range(0, len(images), batch_size):
            idx = order[first : first + batch_size]
            x, y = images[idx], labels[idx]
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5).to(dev)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = torch.where(flip[:, None, None], y.flip(-1), y)
            loss = F.cross_entropy(net(x), y, ignore_index=IGNORE_INDEX)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
    net.eval()

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset_uri": dataset_uri,
        "dataset_name": info.name,
        "num_classes": info.num_classes,
        "dontcare": info.dontcare,
        "segmenter_classes": classes,
        "size": list(hw),
        "width": width,
        "levels": levels,
        "train_split": split,
        "train_rows": len(train.keys),
        "val_split": val_split,
        "val_rows": len(val.keys),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "iterations": step,
        "state_sha256": sha256_of(out),
    }
    segmenter = _segmenter(net, out, meta)
    scores = score_rows(segmenter, val)
    meta |= {"val_miou": scores.miou, "val_accuracy": scores.accuracy}
    meta_path = meta_path_of(out)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return TrainResult(out, meta_path, scores, step, time.perf_counter() - begin)


def _segmenter(net: nn.Module, path: Path, meta: dict) -> Segmenter:
    return Segmenter(
        name=f"builtin:{path}",
        module=net.eval(),
        num_classes=int(meta["segmenter_classes"]),
        label_map=identity_map(int(meta["num_classes"]), meta["dontcare"]),
        weights=(WeightsInfo(name=f"builtin:{path}", sha256=meta["state_sha256"]),),
        input_size=(int(meta["size"][0]), int(meta["size"][1])),
    )


def load_builtin(path: Path | str, num_classes: int | None, device: str = "cpu") -> Segmenter:
    """Load a segmenter written by ``train_segmenter``.

    Args:
        path: The state-dict file.
        num_classes: Training ids of the dataset to score (checked against the metadata);
            None skips the check.
        device: Torch device.

    Raises:
        WeightsError: Missing or unreadable files, a state dict whose sha256 differs from the
            metadata's, or a dataset with other label ids than the one it was trained on.
    """
    path = Path(path).expanduser()
    meta_path = meta_path_of(path)
    train_hint = "train one with `sislab eval train-segmenter DATASET_URI --out PATH`"
    if not path.is_file() or not meta_path.is_file():
        missing = path if not path.is_file() else meta_path
        raise WeightsError(f"builtin segmenter: {missing} does not exist", fix=train_hint)
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as err:
        raise WeightsError(f"builtin segmenter metadata {meta_path} is not JSON: {err}") from None
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{meta_path} is not a builtin segmenter's metadata", fix=train_hint)
    actual = sha256_of(path)
    if actual != meta["state_sha256"]:
        raise WeightsError(
            f"builtin segmenter {path}: sha256 {actual} differs from {meta['state_sha256']} "
            f"recorded in {meta_path.name}",
            fix="keep the state dict and its .json together as train-segmenter wrote them",
        )
    if num_classes is not None and num_classes != meta["num_classes"]:
        raise DataError(
            f"builtin segmenter {path} was trained on {meta['dataset_uri']} "
            f"({meta['num_classes']} label ids); this dataset has {num_classes}",
            fix=train_hint,
        )
    net = TinyUNet(int(meta["segmenter_classes"]), int(meta["width"]), int(meta["levels"]))
    state = torch.load(path, map_location="cpu", weights_only=True)
    load_strict(net, state, f"builtin segmenter {path}")
    return _segmenter(net.to(device), path, meta)
