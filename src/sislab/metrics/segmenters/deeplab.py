"""DeepLabV2 ResNet-101 with multi-scale inputs, the COCO-Stuff segmenter of SPADE's protocol.

The module tree reproduces the state-dict keys of kazuto1011/deeplab-pytorch's
``deeplabv2_resnet101_msc-cocostuff164k-100000.pth`` (``DeepLabV2_ResNet101_MSC``): ``base`` is
the dilated ResNet-101 (``layer1`` the Caffe-style stem, ``layer2..5`` residual stages whose
blocks are ``reduce``/``conv3x3``/``increase`` plus a ``shortcut`` in the first block, each a
conv + BN) and ``base.aspp.c0..c3`` the four atrous 3x3 classifiers whose logits are summed. At
evaluation the MSC wrapper takes the pixel-wise maximum of the logits at input scales 1, 0.5 and
0.75. Input: BGR in 0..255 minus the Caffe mean, as the repository's COCO-Stuff configuration.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sislab.metrics.segmentation import IGNORE_INDEX
from sislab.metrics.segmenters.base import Normalisation

NUM_CLASSES = 182
DATASET_CLASSES = 183  # sislab's COCO-Stuff training ids: 0..181 plus the don't-care 182
NORMALISATION = Normalisation(
    mean=(104.008, 116.669, 122.675), std=(1.0, 1.0, 1.0), scale=255.0, bgr=True
)


def label_map() -> torch.Tensor:
    """sislab COCO-Stuff training ids -> deeplab ids: 0..181 unchanged, don't-care ignored."""
    lut = torch.arange(DATASET_CLASSES, dtype=torch.int64)
    lut[NUM_CLASSES] = IGNORE_INDEX
    return lut


class _ConvBn(nn.Sequential):
    """Conv (no bias) + BN, with an optional ReLU; keys ``conv.*`` and ``bn.*``."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, dilation: int, relu: bool
    ) -> None:
        super().__init__()
        pad = dilation if kernel == 3 else kernel // 2
        self.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, pad, dilation, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout, eps=1e-5))
        if relu:
            self.add_module("relu", nn.ReLU())


class _Bottleneck(nn.Module):
    """MSRA bottleneck: the stride sits in the 1x1 ``reduce`` convolution."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int, project: bool) -> None:
        super().__init__()
        mid = cout // 4
        self.reduce = _ConvBn(cin, mid, 1, stride, 1, relu=True)
        self.conv3x3 = _ConvBn(mid, mid, 3, 1, dilation, relu=True)
        self.increase = _ConvBn(mid, cout, 1, 1, 1, relu=False)
        self.shortcut = _ConvBn(cin, cout, 1, stride, 1, relu=False) if project else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.increase(self.conv3x3(self.reduce(x)))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class _Stage(nn.Sequential):
    def __init__(self, blocks: int, cin: int, cout: int, stride: int, dilation: int) -> None:
        super().__init__()
        for i in range(blocks):
            block = _Bottleneck(
                cin if i == 0 else cout, cout, stride if i == 0 else 1, dilation, i == 0
            )
            self.add_module(f"block{i + 1}", block)


class _ASPP(nn.Module):
    """Four parallel atrous 3x3 classifiers, summed (DeepLab v2)."""

    def __init__(self, cin: int, num_classes: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        for i, rate in enumerate(rates):
            self.add_module(f"c{i}", nn.Conv2d(cin, num_classes, 3, 1, rate, rate, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([branch(x) for branch in self.children()]).sum(0)


class DeepLabV2(nn.Sequential):
    """Dilated ResNet-101 + ASPP, output stride 8."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        stem = nn.Sequential()
        stem.add_module("conv1", _ConvBn(3, 64, 7, 2, 1, relu=True))
        stem.add_module("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))
        self.add_module("layer1", stem)
        self.add_module("layer2", _Stage(3, 64, 256, 1, 1))
        self.add_module("layer3", _Stage(4, 256, 512, 2, 1))
        self.add_module("layer4", _Stage(23, 512, 1024, 1, 2))
        self.add_module("layer5", _Stage(3, 1024, 2048, 1, 4))
        self.add_module("aspp", _ASPP(2048, num_classes, (6, 12, 18, 24)))


class DeepLabV2MSC(nn.Module):
    """Multi-scale wrapper: max over the logits of the input at scales 1, 0.5 and 0.75."""

    def __init__(self, num_classes: int = NUM_CLASSES, scales: tuple[float, ...] = (0.5, 0.75)):
        super().__init__()
        self.base = DeepLabV2(num_classes)
        self.scales = scales

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.base(x)
        size = logits.shape[-2:]
        for scale in self.scales:
            small = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
            other = F.interpolate(self.base(small), size=size, mode="bilinear", align_corners=False)
            logits = torch.maximum(logits, other)
        return logits
