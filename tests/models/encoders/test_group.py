"""GroupDNet's class split: SMIS ``trans_img``'s crop box (signed row/column sums)."""

from __future__ import annotations

import torch

from sislab.models.encoders.group import crop_to_box, split_by_class


def test_box_drops_a_column_whose_signed_sum_cancels() -> None:
    # Class pixels at (1, 1) and (2, 1), (1, 2): column 1 holds +0.5 and -0.5 (sums to 0), so
    # SMIS's box starts at column 2; a mask-based box would start at column 1.
    masked = torch.zeros(3, 4, 4)
    masked[0, 1, 1] = 0.5
    masked[0, 2, 1] = -0.5
    masked[:, 1, 2] = torch.tensor([0.25, 0.25, 0.25])
    out = crop_to_box(masked)
    # box: rows 1..2 (row sums 1.25 and -0.5), column 2 only (column 1 sums to 0)
    expected = torch.nn.functional.interpolate(masked[None, :, 1:3, 2:3], size=(4, 4))[0]
    assert torch.equal(out, expected)
    assert out[0].min() == 0.0 and out[0].max() == 0.25  # the -0.5 / 0.5 column is cropped away


def test_class_whose_sums_all_cancel_counts_as_absent() -> None:
    # One column, two pixels +0.5 and -0.5: every column sum is 0, SMIS keeps it uncropped.
    masked = torch.zeros(3, 4, 4)
    masked[1, 0, 3] = 0.5
    masked[1, 3, 3] = -0.5
    assert torch.equal(crop_to_box(masked), masked)


def test_box_crop_of_a_plain_region_fills_the_frame() -> None:
    image = torch.linspace(-1, 1, 3 * 8 * 8).view(1, 3, 8, 8)
    semantics = torch.zeros(1, 2, 8, 8)
    semantics[0, 1, 2:6, 4:8] = 1
    semantics[0, 0] = 1 - semantics[0, 1]
    split = split_by_class(image, semantics, 2)
    region = image[0, :, 2:6, 4:8]
    expected = torch.nn.functional.interpolate(region[None], size=(8, 8))[0]
    assert torch.equal(split[0, 3:6], expected)
