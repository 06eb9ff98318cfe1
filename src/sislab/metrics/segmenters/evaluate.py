"""Segmentation scores of a dataset split's own images, or of a folder of generated images.

Generated images are matched to the rows of the split by file name: ``<key>.<ext>`` where key is
the row's key as stored in the dataset (the source file stem for converted datasets, the 8-digit
sample index for ``synthetic://``), or ``<row>.<ext>`` with ``row`` the 0-based position of the
row in the split (zero padding allowed). Keys win: the row-position reading applies only when not
every name is a key. Following the protocol of SPADE issue #39 and OASIS, each label map is
resized (nearest) to the generated image's size, and the segmenter runs at that size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sislab.datasets.split_reader import split_keys
from sislab.errors import DataError
from sislab.metrics.provenance import WeightsInfo
from sislab.metrics.segmentation import ConfusionMeter, Present, SegmentationScores
from sislab.metrics.segmenters.base import Segmenter
from sislab.metrics.segmenters.data import Batch, iter_split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class SegmentationReport:
    """Scores plus what they were computed from.

    Attributes:
        scores: mIoU, accuracy, per-class IoU.
        rows: Rows (images) scored.
        split_rows: Rows of the split.
        size: ``(H, W)`` the images were scored at.
        segmenter: Segmenter name.
        weights: Provenance of the segmenter's weights.
        source: What was segmented (``dataset`` or the folder).
    """

    scores: SegmentationScores
    rows: int
    split_rows: int
    size: tuple[int, int]
    segmenter: str
    weights: tuple[WeightsInfo, ...]
    source: str

    def as_dict(self) -> dict:
        """JSON-friendly form."""
        return {
            **self.scores.as_dict(),
            "rows": self.rows,
            "split_rows": self.split_rows,
            "size": list(self.size),
            "segmenter": self.segmenter,
            "weights": [w.__dict__ for w in self.weights],
            "source": self.source,
        }


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def _update(meter: ConfusionMeter, segmenter: Segmenter, images: np.ndarray, labels: np.ndarray):
    target = segmenter.map_labels(torch.from_numpy(labels.astype(np.int64)))
    meter.update(segmenter.predict(_to_tensor(images)), target)


def score_rows(
    segmenter: Segmenter, batch: Batch, chunk: int = 64, present: Present = "union"
) -> SegmentationScores:
    """Scores of the segmenter on rows held in memory (training ids as labels)."""
    meter = ConfusionMeter(segmenter.num_classes, segmenter.ignore_index, segmenter.device)
    for first in range(0, len(batch.keys), chunk):
        part = slice(first, first + chunk)
        _update(meter, segmenter, batch.images[part], batch.labels[part])
    return meter.compute(present)


def score_split(
    segmenter: Segmenter,
    uri: str,
    split: str,
    size: tuple[int, int],
    batch_size: int = 16,
    present: Present = "union",
) -> SegmentationReport:
    """Scores of the segmenter on the real images of a split (its ceiling on that data).

    Raises:
        DataError: Unknown split or unreadable dataset.
    """
    meter = ConfusionMeter(segmenter.num_classes, segmenter.ignore_index, segmenter.device)
    rows = 0
    for batch in iter_split(uri, split, size, batch_size):
        _update(meter, segmenter, batch.images, batch.labels)
        rows += len(batch.keys)
    return SegmentationReport(
        meter.compute(present), rows, rows, size, segmenter.name, segmenter.weights, "dataset"
    )


def match_images(folder: Path, keys: list[str]) -> dict[int, Path]:
    """Row position -> image file, by the naming convention of this module.

    Raises:
        DataError: No image files, or names that are neither all keys nor all row positions.
    """
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})",
            fix="point at the folder of generated images",
        )
    position = {key: i for i, key in enumerate(keys)}
    if all(p.stem in position for p in files):
        return {position[p.stem]: p for p in files}
    matched: dict[int, Path] = {}
    unmatched = []
    for p in files:
        row = int(p.stem) if p.stem.isdigit() else -1
        if 0 <= row < len(keys):
            matched[row] = p
        else:
            unmatched.append(p.name)
    if unmatched:
        raise DataError(
            f"{len(unmatched)} of {len(files)} images in {folder} match no row of the split "
            f"({len(keys)} rows), e.g. {', '.join(unmatched[:3])}",
            fix=f"name each image <row key>.png (keys such as {keys[0]!r}) or <row>.png "
            f"with row in 0..{len(keys) - 1}",
        )
    return matched


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as err:
        raise DataError(f"cannot read image {path}: {err}") from None


def score_folder(
    segmenter: Segmenter,
    folder: Path,
    uri: str,
    split: str,
    batch_size: int = 16,
    present: Present = "union",
) -> SegmentationReport:
    """Scores of the segmenter on generated images against the labels of their rows.

    Raises:
        DataError: Unmatched names, images of different sizes, or an unreadable dataset.
    """
    keys = split_keys(uri, split)
    matched = match_images(folder, keys)
    first = _read_image(matched[min(matched)])
    size = (int(first.shape[0]), int(first.shape[1]))
    meter = ConfusionMeter(segmenter.num_classes, segmenter.ignore_index, segmenter.device)
    for batch in iter_split(uri, split, size, batch_size):
        rows = [i for i in range(len(batch.keys)) if batch.start + i in matched]
        if not rows:
            continue
        images = []
        for i in rows:
            image = _read_image(matched[batch.start + i])
            if image.shape[:2] != size:
                raise DataError(
                    f"{matched[batch.start + i].name} is {image.shape[1]}x{image.shape[0]}, "
                    f"the first image {size[1]}x{size[0]}",
                    fix="score images of one size at a time",
                )
            images.append(image)
        _update(meter, segmenter, np.stack(images), batch.labels[rows])
    return SegmentationReport(
        meter.compute(present),
        len(matched),
        len(keys),
        size,
        segmenter.name,
        segmenter.weights,
        str(folder),
    )
