"""DeepFashion as SMIS (GroupDNet) uses it: ``train/``, ``test/`` images with CIHP-parsed masks.

Layout of the SMIS release (Seanseattle/SMIS data/deepfashion_dataset.py ``get_paths``):
``<root>/{train,test}/*.jpg`` and ``<root>/cihp_{train,test}_mask/*.png`` with label_nc=8;
SMIS pairs them by sorted order, here by file stem. ``test`` becomes the ``val`` split.
"""

from __future__ import annotations

from pathlib import Path

from sislab.datasets.converters.base import DatasetFormat, Sample, require_dir

_SPLITS = {"train": "train", "test": "val"}
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def list_samples(src: Path) -> tuple[dict[str, list[Sample]], list[tuple[str, str]]]:
    """Samples of train and val, and the images without a mask."""
    splits: dict[str, list[Sample]] = {}
    missing = []
    for phase, split in _SPLITS.items():
        images = require_dir(src / phase, f"{phase}/")
        masks = require_dir(src / f"cihp_{phase}_mask", f"cihp_{phase}_mask/")
        samples = []
        for img in sorted(p for p in images.iterdir() if p.suffix.lower() in _IMAGE_EXTS):
            label = masks / f"{img.stem}.png"
            if not label.is_file():
                missing.append((str(img), "no cihp mask"))
                continue
            samples.append(Sample(img.stem, str(img), str(label)))
        splits[split] = samples
    return splits, missing


FORMAT = DatasetFormat("deepfashion", "deepfashion", False, list_samples)
