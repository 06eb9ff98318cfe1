"""Cityscapes from the official download: leftImg8bit/ and gtFine/ (labelIds + instanceIds).

Layout: ``leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` with
``gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_{labelIds,instanceIds}.png``; the test
split has no public labels and is not converted. Label ids are the 35 labelIds SPADE uses.
"""

from __future__ import annotations

from pathlib import Path

from sislab.datasets.converters.base import DatasetFormat, Sample, require_dir

_IMG_SUFFIX = "_leftImg8bit.png"


def list_samples(src: Path) -> tuple[dict[str, list[Sample]], list[tuple[str, str]]]:
    """Samples of train and val, and the images without a label or instance map."""
    images = require_dir(src / "leftImg8bit", "leftImg8bit/")
    labels = require_dir(src / "gtFine", "gtFine/")
    splits: dict[str, list[Sample]] = {}
    missing = []
    for split in ("train", "val"):
        samples = []
        for img in sorted((images / split).glob(f"*/*{_IMG_SUFFIX}")):
            key = img.name[: -len(_IMG_SUFFIX)]
            base = labels / split / img.parent.name / key
            label = Path(f"{base}_gtFine_labelIds.png")
            inst = Path(f"{base}_gtFine_instanceIds.png")
            if not label.is_file() or not inst.is_file():
                missing.append((str(img), "no gtFine labelIds/instanceIds"))
                continue
            samples.append(Sample(key, str(img), str(label), str(inst)))
        if samples:
            splits[split] = samples
    return splits, missing


FORMAT = DatasetFormat("cityscapes", "cityscapes", True, list_samples)
