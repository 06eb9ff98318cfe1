"""Sample grids: a header row naming the columns, then one row per layout (label | generated |
real), upscaled so that a cell is readable in the MLflow UI without zoom, written as PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

COLUMNS = ("label", "generated", "real")
MIN_CELL_PX = 128  # MLflow's image view shows a grid at about its size: small cells get upscaled
HEADER_PX = 24  # height of the row of column names
FONT_PX = 16


def palette(num_classes: int) -> np.ndarray:
    """Distinct, deterministic colours (the PASCAL VOC bit-interleaving scheme), (num_classes, 3)."""
    colours = np.zeros((max(num_classes, 1), 3), dtype=np.uint8)
    for i in range(num_classes):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours[i] = (r, g, b)
    return colours


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    return array.permute(0, 2, 3, 1).numpy()


def upscale_factor(height: int, width: int) -> int:
    """Integer factor that brings the smaller side of a cell to at least ``MIN_CELL_PX``."""
    return max(1, math.ceil(MIN_CELL_PX / max(1, min(height, width))))


def header(cell_width: int) -> Image.Image:
    """The row of column names, each centred over its column, black on white."""
    image = Image.new("RGB", (cell_width * len(COLUMNS), HEADER_PX), "white")
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=FONT_PX)
    except TypeError:  # Pillow without FreeType: its fixed bitmap font
        font = ImageFont.load_default()
    for i, name in enumerate(COLUMNS):
        draw.text(
            (cell_width * i + cell_width // 2, HEADER_PX // 2), name, fill="black", font=font,
            anchor="mm",
        )  # fmt: skip
    return image


def write_grid(
    path: Path, label: torch.Tensor, generated: torch.Tensor, real: torch.Tensor, num_classes: int
) -> Path:
    """Write the grid PNG: column names, then one row per sample, cells upscaled (nearest) to at
    least ``MIN_CELL_PX`` pixels.

    Args:
        path: Output file.
        label: (B, 1, H, W) class ids.
        generated: (B, 3, H, W) in [-1, 1].
        real: (B, 3, H, W) in [-1, 1].
        num_classes: Number of classes, for the colour palette.
    """
    colours = palette(num_classes)
    ids = label[:, 0].long().cpu().numpy().clip(0, num_classes - 1)
    rows = [
        np.concatenate([colours[ids[i]], gen, real_img], axis=1)
        for i, (gen, real_img) in enumerate(zip(_to_uint8(generated), _to_uint8(real), strict=True))
    ]
    body = Image.fromarray(np.concatenate(rows, axis=0))
    height, width = label.shape[-2:]
    factor = upscale_factor(height, width)
    body = body.resize((body.width * factor, body.height * factor), Image.Resampling.NEAREST)
    grid = Image.new("RGB", (body.width, HEADER_PX + body.height), "white")
    grid.paste(header(width * factor), (0, 0))
    grid.paste(body, (0, HEADER_PX))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path
