"""ADE20K scene parsing from the official ADEChallengeData2016 download.

Layout: ``ADEChallengeData2016/images/{training,validation}/ADE_*.jpg`` with
``annotations/{training,validation}/ADE_*.png`` (0 = other, 1..150 = objectInfo150 classes).
SRC may be the ADEChallengeData2016 folder itself or its parent.
"""

from __future__ import annotations

from pathlib import Path

from sislab.datasets.converters.base import DatasetFormat, Sample, require_dir

_SPLITS = {"training": "train", "validation": "val"}


def list_samples(src: Path) -> tuple[dict[str, list[Sample]], list[tuple[str, str]]]:
    """Samples of train and val, and the images without an annotation."""
    root = src / "ADEChallengeData2016" if (src / "ADEChallengeData2016").is_dir() else src
    images = require_dir(root / "images", "ADEChallengeData2016/images/")
    annotations = require_dir(root / "annotations", "ADEChallengeData2016/annotations/")
    splits: dict[str, list[Sample]] = {}
    missing = []
    for official, split in _SPLITS.items():
        samples = []
        for img in sorted((images / official).glob("*.jpg")):
            label = annotations / official / f"{img.stem}.png"
            if not label.is_file():
                missing.append((str(img), "no annotation"))
                continue
            samples.append(Sample(img.stem, str(img), str(label)))
        if samples:
            splits[split] = samples
    return splits, missing


FORMAT = DatasetFormat("ade20k", "ade20k", False, list_samples)
