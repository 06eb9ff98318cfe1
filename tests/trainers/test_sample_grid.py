"""Sample grids: a header naming the columns, cells upscaled to be readable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sislab.trainers.sample_grid import HEADER_PX, MIN_CELL_PX, upscale_factor, write_grid


def test_small_cells_are_upscaled_with_nearest_and_the_columns_are_labelled(tmp_path: Path):
    label = torch.tensor([[[[0, 1], [2, 3]]]]).repeat(2, 1, 16, 16)  # (2, 1, 32, 32)
    generated = torch.full((2, 3, 32, 32), 1.0)  # white
    real = torch.full((2, 3, 32, 32), -1.0)  # black
    path = write_grid(tmp_path / "grid.png", label, generated, real, num_classes=4)
    with Image.open(path) as image:
        grid = np.asarray(image.convert("RGB"))
    factor = upscale_factor(32, 32)
    assert factor * 32 >= MIN_CELL_PX
    cell = 32 * factor
    assert grid.shape == (HEADER_PX + 2 * cell, 3 * cell, 3)
    body = grid[HEADER_PX:]
    assert (body[:, cell : 2 * cell] == 255).all() and (body[:, 2 * cell :] == 0).all()
    # Nearest upscaling: each label pixel is a factor x factor block of one colour.
    block = body[:factor, :factor].reshape(-1, 3)
    assert (block == block[0]).all()
    # The header is white with dark text in each column.
    header = grid[:HEADER_PX]
    for column in range(3):
        part = header[:, column * cell : (column + 1) * cell]
        assert (part < 128).any() and (part == 255).mean() > 0.5


def test_large_cells_are_not_resized() -> None:
    assert upscale_factor(256, 512) == 1
    assert upscale_factor(64, 64) == 2
