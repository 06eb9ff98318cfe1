"""COCO-Stuff 164k from the official downloads: COCO 2017 images + stuffthingmaps_trainval2017.

Layout (zips unpacked side by side): ``train2017/*.jpg``, ``val2017/*.jpg`` and
``stuffthingmaps_trainval2017/{train2017,val2017}/*.png``; the cocostuff README's
``images/`` + ``annotations/`` arrangement is accepted too. Label ids 0..181, 255 = unlabeled.
The download has no instance maps; SPADE derives them from the COCO instance annotations
(datasets/coco_generate_instance_map.py). When such maps are present as
``instancemaps/{train2017,val2017}/<stem>.png`` for every image, rows carry them.
"""

from __future__ import annotations

from pathlib import Path

from sislab.datasets.converters.base import DatasetFormat, Sample
from sislab.errors import DataError

_SPLITS = {"train2017": "train", "val2017": "val"}


def _first_dir(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def list_samples(src: Path) -> tuple[dict[str, list[Sample]], list[tuple[str, str]]]:
    """Samples of train and val, and the images without a stuffthingmap."""
    splits: dict[str, list[Sample]] = {}
    missing = []
    for official, split in _SPLITS.items():
        images = _first_dir(src / official, src / "images" / official)
        labels = _first_dir(
            src / "stuffthingmaps_trainval2017" / official,
            src / "annotations" / official,
        )
        if images is None or labels is None:
            continue
        samples = []
        for img in sorted(images.glob("*.jpg")):
            label = labels / f"{img.stem}.png"
            if not label.is_file():
                missing.append((str(img), "no stuffthingmap"))
                continue
            inst = src / "instancemaps" / official / f"{img.stem}.png"
            samples.append(
                Sample(img.stem, str(img), str(label), str(inst) if inst.is_file() else None)
            )
        if samples:
            splits[split] = samples
    if not splits:
        raise DataError(
            f"no COCO-Stuff images/stuffthingmaps under {src}",
            fix="SRC must hold train2017/ (or images/train2017/) and "
            "stuffthingmaps_trainval2017/train2017/",
        )
    return splits, missing


FORMAT = DatasetFormat("coco-stuff", "coco_stuff", None, list_samples)
