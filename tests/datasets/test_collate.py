"""Batches are written straight into the model's arrays: the same values as the reference
formula (float32(x) / 127.5 - 1, SPADE's ToTensor + Normalize(0.5, 0.5)) on cropped, flipped rows."""

from __future__ import annotations

import numpy as np

from sislab.datasets.epochs import _collate
from sislab.datasets.preprocess import Preprocess, to_model_arrays


def _reference(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0)


def test_collated_batches_equal_the_reference_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    pre = Preprocess("resize_and_crop", (12, 10), load_size=16)
    rows = []
    for i in range(5):
        image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        label = rng.integers(0, 35, (16, 16), dtype=np.uint8)
        inst = rng.integers(0, 40_000, (16, 16), dtype=np.int32)
        crop = pre.crop_flip(image, label, inst, np.random.default_rng(i))
        rows.append((f"k{i}", *crop))
    batch = _collate(rows)
    images = np.stack([r[1] for r in rows])
    assert np.array_equal(batch["image"].numpy(), _reference(images))
    assert batch["image"].numpy().flags.c_contiguous
    assert np.array_equal(batch["label"].numpy(), np.stack([r[2] for r in rows])[:, None])
    assert batch["instance"].dtype.is_floating_point is False
    assert np.array_equal(batch["instance"].numpy(), np.stack([r[3] for r in rows])[:, None])
    assert batch["key"] == [f"k{i}" for i in range(5)]


def test_to_model_arrays_equals_the_reference_bit_for_bit() -> None:
    images = np.random.default_rng(1).integers(0, 256, (3, 7, 9, 3), dtype=np.uint8)
    labels = np.zeros((3, 7, 9), np.uint8)
    image, label = to_model_arrays(images, labels)
    assert image.dtype == np.float32 and np.array_equal(image, _reference(images))
    assert label.shape == (3, 1, 7, 9) and label.dtype == np.int64
