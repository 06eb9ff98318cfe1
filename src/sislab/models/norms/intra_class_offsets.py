"""CLADE-ICPE's intra-class positional map, computed online from the label map.

CLADE's ``util/cal_dist_masks.py`` precomputes, per label image, a 2-channel map: for every
connected component of every class (OpenCV, 8-connectivity), each pixel's row and column offset
from the component centroid, each divided by its largest absolute value in that component
(+1e-5), so both lie in [-1, 1]. sislab computes the same map on the fly from the one-hot map
(connected components by iterative 3x3 max-propagation of pixel ids inside each class), so no
``*_distance.npy`` files are needed and the map always matches the flipped/cropped label.
Deliberate differences from the script: every class gets offsets (the script skips raw label 0,
which is "unlabeled" on Cityscapes and ADE20K but a real class on COCO-Stuff), and a flipped
label gives mirrored offsets (the official loader flips the stored map vertically, a bug).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# CLADE cal_dist_masks.py: offsets / (max |offset| + 1e-5).
NORM_EPS = 1e-5


def connected_components(classes: torch.Tensor) -> torch.Tensor:
    """Label the 8-connected components of equal class ids.

    Args:
        classes: (B, H, W) integer class ids.

    Returns:
        (B, H, W) int64 component ids, unique over the batch (the largest flat pixel index of the
        component); iterates until no id changes (at most the longest in-component path).
    """
    b, h, w = classes.shape
    ids = torch.arange(b * h * w, device=classes.device, dtype=torch.float64).view(b, 1, h, w)
    cls = classes.view(b, 1, h, w).to(torch.float64)
    while True:
        # A pixel takes the largest id among its 8 neighbours of the same class.
        same = F.unfold(cls, 3, padding=1) == cls.view(b, 1, h * w)
        neighbour_ids = F.unfold(ids, 3, padding=1)
        candidate = torch.where(same, neighbour_ids, torch.zeros_like(neighbour_ids))
        new_ids = candidate.amax(dim=1).view(b, 1, h, w)
        if torch.equal(new_ids, ids):
            return ids.view(b, h, w).long()
        ids = new_ids


def intra_class_offsets(classes: torch.Tensor) -> torch.Tensor:
    """CLADE-ICPE's normalised (row, column) offsets from each component's centroid.

    Args:
        classes: (B, H, W) integer class ids.

    Returns:
        (B, 2, H, W) float map in [-1, 1]: channel 0 the row offset, channel 1 the column offset.
    """
    b, h, w = classes.shape
    comp = connected_components(classes).view(-1)
    n = b * h * w
    # float32 whatever the default dtype (the caller casts the result to the semantics' dtype):
    # index_add_ refuses to mix a float64 sum with float32 coordinates.
    like = {"device": classes.device, "dtype": torch.float32}
    rows = torch.arange(h, **like).view(1, h, 1).expand(b, h, w)
    cols = torch.arange(w, **like).view(1, 1, w).expand(b, h, w)
    count = torch.zeros(n, **like).index_add_(0, comp, torch.ones(n, **like))
    out = []
    for coord in (rows.reshape(-1), cols.reshape(-1)):
        total = torch.zeros(n, **like).index_add_(0, comp, coord)
        offset = coord - (total / count.clamp(min=1))[comp]
        extent = torch.zeros(n, **like).scatter_reduce_(0, comp, offset.abs(), reduce="amax")
        out.append((offset / (extent[comp] + NORM_EPS)).view(b, h, w))
    return torch.stack(out, dim=1)


class IntraClassOffsets(nn.Module):
    """Append CLADE-ICPE's 2 offset channels to the semantic input that the norm layers read.

    Args:
        num_classes: The first ``num_classes`` channels of the input are the one-hot classes.

    Shapes:
        ``forward(semantics (B, C, H, W)) -> (B, C + 2, H, W)``; on the meta device (model
        summaries) the offsets are zeros, since components cannot be found without data.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, semantics: torch.Tensor) -> torch.Tensor:
        """Compute the offsets of the argmax classes and concatenate them."""
        b, _, h, w = semantics.shape
        if semantics.device.type == "meta":
            offsets = semantics.new_zeros(b, 2, h, w)
        else:
            with torch.no_grad():
                classes = semantics[:, : self.num_classes].argmax(dim=1)
                offsets = intra_class_offsets(classes).to(semantics.dtype)
        return torch.cat([semantics, offsets], dim=1)
