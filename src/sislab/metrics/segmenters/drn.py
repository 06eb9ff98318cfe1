"""DRN-D-105 for Cityscapes: the segmenter of SPADE's Cityscapes mIoU (fyu/drn ``DRNSeg``).

The module tree reproduces the state-dict keys of ``drn-d-105_ms_cityscapes.pth``: ``base.N`` are
the DRN-D stages 0..8 (``layer0``..``layer8`` of ``drn.DRN`` without its pooling and classifier),
``seg`` the 1x1 classifier into the 19 Cityscapes trainIds and ``up`` the fixed bilinear
transposed convolution that brings the stride-8 logits back to the input size. Input: RGB in
[0, 1] normalised by the mean and std of ``datasets/cityscapes/info.json``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sislab.metrics.segmentation import IGNORE_INDEX
from sislab.metrics.segmenters.base import Normalisation
from sislab.metrics.segmenters.blocks import Bottleneck

NUM_CLASSES = 19
NORMALISATION = Normalisation(
    mean=(0.29010095242892997, 0.32808144844279574, 0.28696394422942517),
    std=(0.1829540508368939, 0.18656561047509476, 0.18447508988480435),
)

# cityscapesScripts labels.py: labelId -> trainId (255: not evaluated). sislab's Cityscapes
# training ids are the labelIds 0..33, plus 34 for the license plate (labelId -1 upstream).
_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10}
_TRAIN_IDS |= {24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
DATASET_CLASSES = 35


def label_map() -> torch.Tensor:
    """sislab Cityscapes training ids (35 labelIds) -> the 19 trainIds, others ignored."""
    lut = torch.full((DATASET_CLASSES,), IGNORE_INDEX, dtype=torch.int64)
    for label_id, train_id in _TRAIN_IDS.items():
        lut[label_id] = train_id
    return lut


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _res_stage(cin: int, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
    layers = [Bottleneck(cin, planes, stride, dilation)]
    layers += [Bottleneck(planes * 4, planes, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def drn_d_105_base() -> nn.Sequential:
    """Stages 0..8 of DRN-D-105 (output: 512 channels at stride 8)."""
    return nn.Sequential(
        nn.Sequential(
            nn.Conv2d(3, 16, 7, padding=3, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)
        ),
        nn.Sequential(*_conv_bn_relu(16, 16)),
        nn.Sequential(*_conv_bn_relu(16, 32, stride=2)),
        _res_stage(32, 64, 3, stride=2, dilation=1),
        _res_stage(256, 128, 4, stride=2, dilation=1),
        _res_stage(512, 256, 23, stride=1, dilation=2),
        _res_stage(1024, 512, 3, stride=1, dilation=4),
        nn.Sequential(*_conv_bn_relu(2048, 512, dilation=2)),
        nn.Sequential(*_conv_bn_relu(512, 512)),
    )


def _bilinear_kernel(size: int) -> torch.Tensor:
    """The 2-D bilinear upsampling kernel that fyu/drn writes into its transposed conv."""
    f = math.ceil(size / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    ramp = 1 - torch.abs(torch.arange(size, dtype=torch.float64) / f - c)
    return (ramp[:, None] * ramp[None, :]).float()


class DRNSeg(nn.Module):
    """DRN-D-105 segmentation network; ``forward`` returns logits at 8x the stride-8 grid."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.base = drn_d_105_base()
        self.seg = nn.Conv2d(512, num_classes, 1, bias=True)
        self.up = nn.ConvTranspose2d(
            num_classes, num_classes, 16, stride=8, padding=4, groups=num_classes, bias=False
        )
        with torch.no_grad():
            self.up.weight.copy_(_bilinear_kernel(16).expand_as(self.up.weight))
        self.up.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.seg(self.base(x)))
