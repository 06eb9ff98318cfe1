"""Sample grids: one row per layout, columns label | generated | real, written as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


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


def write_grid(
    path: Path, label: torch.Tensor, generated: torch.Tensor, real: torch.Tensor, num_classes: int
) -> Path:
    """Write the grid PNG.

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
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path
