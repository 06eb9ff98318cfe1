"""UperNet with a ResNet-101 encoder, the ADE20K segmenter of SPADE's protocol.

Two modules whose state-dict keys are those of CSAILVision/semantic-segmentation-pytorch's
``ade20k-resnet101-upernet`` files: ``encoder_epoch_50.pth`` (the deep-stem ResNet-101 of
``mit_semseg.models.resnet``: three 3x3 stem convolutions, then ``layer1..4``, without the
classifier) and ``decoder_epoch_50.pth`` (``UPerNet`` with ``fpn_dim=512``: pyramid pooling on
the last stage, an FPN over the four stages and a fused 3x3 + 1x1 classifier into 150 classes).
Input: RGB in [0, 1] normalised by the ImageNet mean and std.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sislab.metrics.segmentation import IGNORE_INDEX
from sislab.metrics.segmenters.base import Normalisation
from sislab.metrics.segmenters.blocks import Bottleneck

NUM_CLASSES = 150
DATASET_CLASSES = 151  # sislab's ADE20K training ids: 0..149 plus the don't-care 150
NORMALISATION = Normalisation(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def label_map() -> torch.Tensor:
    """sislab ADE20K training ids (raw id - 1) -> UperNet ids: unchanged, don't-care ignored."""
    lut = torch.arange(DATASET_CLASSES, dtype=torch.int64)
    lut[NUM_CLASSES] = IGNORE_INDEX
    return lut


def _cbr(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _stage(cin: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(cin, planes, stride)]
    layers += [Bottleneck(planes * 4, planes, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet101Encoder(nn.Module):
    """Deep-stem ResNet-101; ``forward`` returns the four stage outputs (strides 4..32)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(64, 64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(64, 128, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.relu3 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(128, 64, 3, 1)
        self.layer2 = _stage(256, 128, 4, 2)
        self.layer3 = _stage(512, 256, 23, 2)
        self.layer4 = _stage(1024, 512, 3, 2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.maxpool(self.relu3(self.bn3(self.conv3(x))))
        feats = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            feats.append(x)
        return feats


def _resize(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class UPerNetDecoder(nn.Module):
    """Pyramid pooling (scales 1, 2, 3, 6) + FPN + fusion classifier."""

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        fc_dim: int = 2048,
        fpn_dim: int = 512,
        pool_scales: tuple[int, ...] = (1, 2, 3, 6),
        fpn_inplanes: tuple[int, ...] = (256, 512, 1024, 2048),
    ) -> None:
        super().__init__()
        self.ppm_pooling = nn.ModuleList(nn.AdaptiveAvgPool2d(s) for s in pool_scales)
        self.ppm_conv = nn.ModuleList(_cbr(fc_dim, 512, kernel=1) for _ in pool_scales)
        self.ppm_last_conv = _cbr(fc_dim + len(pool_scales) * 512, fpn_dim)
        self.fpn_in = nn.ModuleList(_cbr(c, fpn_dim, kernel=1) for c in fpn_inplanes[:-1])
        self.fpn_out = nn.ModuleList(
            nn.Sequential(_cbr(fpn_dim, fpn_dim)) for _ in fpn_inplanes[:-1]
        )
        self.conv_last = nn.Sequential(
            _cbr(len(fpn_inplanes) * fpn_dim, fpn_dim), nn.Conv2d(fpn_dim, num_classes, 1)
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        top = feats[-1]
        pooled = [top]
        for pool, conv in zip(self.ppm_pooling, self.ppm_conv, strict=True):
            # The official decoder upsamples before its 1x1 conv; the order changes the result.
            pooled.append(conv(_resize(pool(top), top.shape[-2:])))
        f = self.ppm_last_conv(torch.cat(pooled, 1))
        levels = [f]
        for i in reversed(range(len(feats) - 1)):
            lateral = self.fpn_in[i](feats[i])
            f = lateral + _resize(f, lateral.shape[-2:])
            levels.append(self.fpn_out[i](f))
        levels.reverse()
        size = levels[0].shape[-2:]
        fused = torch.cat([levels[0], *(_resize(x, size) for x in levels[1:])], 1)
        return self.conv_last(fused)


class UperNet101(nn.Module):
    """Encoder + decoder; ``forward`` returns logits at stride 4."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.encoder = ResNet101Encoder()
        self.decoder = UPerNetDecoder(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
