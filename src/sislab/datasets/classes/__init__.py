"""Class tables of the supported datasets (one JSON file each): stored id, name, colour.

Colours are the official ones where the dataset defines them (Cityscapes, cityscapesScripts
labels.py); elsewhere the PASCAL VOC bit-interleaved colour map that SPADE's util.labelcolormap
uses for visualisation.
"""

from __future__ import annotations

import json
from importlib import resources

from sislab.datasets.manifest import ClassInfo

TABLES = ("cityscapes", "ade20k", "coco_stuff", "celebamask_hq", "deepfashion")


def voc_colour(index: int) -> tuple[int, int, int]:
    """PASCAL VOC colour-map entry ``index`` (bits of the index spread over R, G, B)."""
    r = g = b = 0
    c = index
    for shift in range(7, -1, -1):
        r |= (c & 1) << shift
        g |= ((c >> 1) & 1) << shift
        b |= ((c >> 2) & 1) << shift
        c >>= 3
    return r, g, b


def load_table(name: str) -> tuple[list[ClassInfo], int | None]:
    """Classes and don't-care id of dataset ``name`` (one of ``TABLES``)."""
    raw = json.loads(resources.files(__package__).joinpath(f"{name}.json").read_text())
    classes = [
        ClassInfo(id=i, name=n, colour=tuple(c) if c else voc_colour(i))
        for i, n, c in raw["classes"]
    ]
    return classes, raw["dontcare_id"]
