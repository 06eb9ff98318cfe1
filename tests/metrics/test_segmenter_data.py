"""Sharded datasets read without Ray, and a don't-care class left out of training and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sislab.datasets.manifest import load_manifest, save_manifest
from sislab.datasets.storage import resolve
from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.datasets.synthetic_writer import write_synthetic
from sislab.errors import DataError
from sislab.metrics.segmentation import IGNORE_INDEX
from sislab.metrics.segmenters import load_segmenter, train_segmenter
from sislab.metrics.segmenters.data import dataset_info, iter_split, load_split
from sislab.metrics.segmenters.evaluate import score_split

URI = "synthetic://shapes?size=16&classes=4&num=12&val=6&seed=3"


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    root = tmp_path / "shapes"
    write_synthetic(resolve(str(root)), parse_synthetic_uri(URI), target_bytes=4000)
    return root


def test_shards_read_like_the_synthetic_uri(sharded: Path) -> None:
    a, b = load_split(URI, "val", (8, 8)), load_split(str(sharded), "val", (8, 8))
    assert a.keys == b.keys
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.images, b.images)
    starts = [batch.start for batch in iter_split(str(sharded), "train", (8, 8), batch_size=5)]
    assert starts == [0, 5, 10]
    with pytest.raises(DataError, match="no split 'test'"):
        load_split(str(sharded), "test", (8, 8))


def test_dontcare_is_ignored_in_training_and_scores(sharded: Path, tmp_path: Path) -> None:
    location = resolve(str(sharded))
    manifest = load_manifest(location)
    save_manifest(location, manifest.model_copy(update={"dontcare_id": 3}))
    info = dataset_info(str(sharded))
    assert (info.num_classes, info.dontcare) == (4, 3)

    torch.set_num_threads(1)
    result = train_segmenter(str(sharded), tmp_path / "seg.pt", epochs=1, size=8)
    seg = load_segmenter(f"builtin:{result.path}", num_classes=4)
    assert seg.num_classes == 3
    assert seg.label_map.tolist() == [0, 1, 2, IGNORE_INDEX]
    val = load_split(str(sharded), "val", (8, 8))
    report = score_split(seg, str(sharded), "val", (8, 8))
    assert report.scores.pixels == int((val.labels != 3).sum())
    assert report.scores.pixels < val.labels.size  # the layouts do hold class-3 pixels


def test_size_must_fit_the_unet(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="multiple of 4"):
        train_segmenter(URI, tmp_path / "seg.pt", epochs=1, size=(10, 16))
