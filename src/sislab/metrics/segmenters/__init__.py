"""Segmenters that score generated images: the papers' networks and sislab's builtin one.

``load_segmenter(name, ...)`` returns a ``Segmenter``: the network, ``predict`` (images in
[-1, 1] -> class ids), the mapping of the dataset's training ids to the segmenter's ids and the
provenance of its weights. ``train_segmenter`` trains the builtin segmenter on any dataset.
"""

from sislab.metrics.segmenters.base import Segmenter
from sislab.metrics.segmenters.builtin import train_segmenter
from sislab.metrics.segmenters.registry import (
    DEFAULT_FOR_DATASET,
    SEGMENTERS,
    load_segmenter,
    segmenter_names,
)

__all__ = [
    "DEFAULT_FOR_DATASET",
    "SEGMENTERS",
    "Segmenter",
    "load_segmenter",
    "segmenter_names",
    "train_segmenter",
]
