"""Converters from the official download layouts, by ``--format`` name."""

from __future__ import annotations

from sislab.datasets.converters import ade20k, celebamask_hq, cityscapes, coco_stuff, deepfashion
from sislab.datasets.converters.base import ConvertReport, DatasetFormat, convert

FORMATS: dict[str, DatasetFormat] = {
    m.FORMAT.name: m.FORMAT for m in (cityscapes, ade20k, coco_stuff, celebamask_hq, deepfashion)
}

__all__ = ["FORMATS", "ConvertReport", "DatasetFormat", "convert"]
