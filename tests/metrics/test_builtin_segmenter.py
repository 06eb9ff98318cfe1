"""The builtin segmenter learns the synthetic dataset: mIoU > 0.8 on val rows it never saw.

One training (about 20 s on one CPU thread) serves every test of this file: loading through the
registry, scoring a split and a folder of images, and the errors of mismatched inputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sislab.datasets.split_reader import split_keys
from sislab.errors import DataError, WeightsError
from sislab.metrics.segmenters import load_segmenter, train_segmenter
from sislab.metrics.segmenters.builtin import TrainResult
from sislab.metrics.segmenters.data import load_split
from sislab.metrics.segmenters.evaluate import match_images, score_folder, score_split
from sislab.metrics.weights import sha256_of

# 4 classes at 32x32 as the project's synthetic tests use; 256 train rows, 32 val rows.
URI = "synthetic://shapes?size=32&classes=4&num=256&val=32&seed=0"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("builtin") / "seg.pt"
    return train_segmenter(URI, out, epochs=10, batch_size=16, seed=0)


def test_reaches_miou_above_0_8_on_unseen_val_rows(trained: TrainResult) -> None:
    assert not set(split_keys(URI, "train")) & set(split_keys(URI, "val"))
    assert trained.val.miou > 0.8, trained.val
    assert trained.val.accuracy > 0.9
    assert trained.val.classes_counted == 4
    assert trained.seconds < 60
    meta = json.loads(trained.meta_path.read_text())
    assert meta["dataset_uri"] == URI and meta["val_rows"] == 32 and meta["train_rows"] == 256
    assert meta["val_miou"] == pytest.approx(trained.val.miou)
    assert meta["state_sha256"] == sha256_of(trained.path)
    assert (meta["num_classes"], meta["dontcare"], meta["size"]) == (4, None, [32, 32])


def test_registry_loads_it_with_provenance(trained: TrainResult) -> None:
    seg = load_segmenter(f"builtin:{trained.path}", num_classes=4)
    (info,) = seg.weights
    assert info.name == f"builtin:{trained.path}"
    assert info.sha256 == sha256_of(trained.path) and not info.substitute
    report = score_split(seg, URI, "val", (32, 32))
    assert report.rows == 32
    assert report.scores.miou == pytest.approx(trained.val.miou)


def test_generated_folder_matches_rows_by_key_or_position(
    trained: TrainResult, tmp_path: Path
) -> None:
    seg = load_segmenter(f"builtin:{trained.path}", num_classes=4)
    val = load_split(URI, "val", (32, 32))
    by_key, by_row = tmp_path / "by_key", tmp_path / "by_row"
    by_key.mkdir()
    by_row.mkdir()
    for i, (key, image) in enumerate(zip(val.keys, val.images, strict=True)):
        Image.fromarray(image).save(by_key / f"{key}.png")
        Image.fromarray(image).save(by_row / f"{i:04d}.png")
    real = score_split(seg, URI, "val", (32, 32)).scores
    for folder in (by_key, by_row):
        report = score_folder(seg, folder, URI, "val")
        assert (report.rows, report.split_rows) == (32, 32)
        assert report.scores.miou == pytest.approx(real.miou)
    # A subset of rows scores only those rows.
    for p in sorted(by_row.iterdir())[8:]:
        p.unlink()
    assert score_folder(seg, by_row, URI, "val").rows == 8
    (by_row / "sample_7.png").write_bytes((by_key / f"{val.keys[0]}.png").read_bytes())
    with pytest.raises(DataError, match="match no row") as err:
        match_images(by_row, val.keys)
    assert "sample_7.png" in str(err.value) and "<row key>.png" in str(err.value)


def test_noise_images_score_low(trained: TrainResult, tmp_path: Path) -> None:
    """The score follows the images, not the labels: noise cannot reach the real images' mIoU."""
    seg = load_segmenter(f"builtin:{trained.path}", num_classes=4)
    rng = np.random.default_rng(0)
    for i in range(16):
        noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(noise).save(tmp_path / f"{i}.png")
    assert score_folder(seg, tmp_path, URI, "val").scores.miou < 0.5


def test_mismatches_are_clear_errors(trained: TrainResult, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"\(4 label ids\); this dataset has 6"):
        load_segmenter(f"builtin:{trained.path}", num_classes=6)
    with pytest.raises(WeightsError, match="does not exist") as err:
        load_segmenter(f"builtin:{tmp_path / 'none.pt'}")
    assert "sislab eval train-segmenter" in str(err.value)
    copy = tmp_path / "copy.pt"
    shutil.copy(trained.path, copy)
    shutil.copy(trained.meta_path, copy.with_suffix(".json"))
    state = torch.load(copy, weights_only=True)
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, copy)
    with pytest.raises(WeightsError, match="differs from"):
        load_segmenter(f"builtin:{copy}")
