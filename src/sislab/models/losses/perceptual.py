"""VGG19 perceptual loss (pix2pixHD/SPADE ``VGGLoss``) on a self-contained VGG19 definition."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from sislab.errors import WeightsError

# torchvision vgg19 ("E") feature layout: conv widths, "M" = 2x2 max-pool.
VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
# SPADE VGG19: slices of `features` ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
SLICE_BOUNDS = (0, 2, 7, 12, 21, 30)
# SPADE VGGLoss.weights
LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def vgg19_features() -> nn.Sequential:
    """A ``nn.Sequential`` with the module indices of ``torchvision.models.vgg19().features``.

    Returns:
        37 modules (16 conv3x3 + ReLU pairs and 5 max-pools), randomly initialised.
    """
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            in_channels = int(item)
    return nn.Sequential(*layers)


def _features_state(state_dict: Mapping[str, torch.Tensor], keep: int) -> dict[str, torch.Tensor]:
    """Select ``features.N.*`` entries with ``N < keep`` (torchvision vgg19 state-dict keys)."""
    prefix = "features."
    if not any(k.startswith(prefix) for k in state_dict):
        prefix = ""  # a state dict of ``features`` alone
    out = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        index = rest.split(".", 1)[0]
        if index.isdigit() and int(index) < keep:
            out[rest] = value
    return out


class VGG19Perceptual(nn.Module):
    """Frozen VGG19 feature L1 loss: ``sum_i w_i * L1(vgg_i(fake), vgg_i(real).detach())``.

    Layers relu1_1 .. relu5_1 with weights 1/32, 1/16, 1/8, 1/4, 1. Images are fed in [-1, 1]
    without ImageNet renormalisation, as in SPADE's code.

    Args:
        state_dict: A torchvision ``vgg19`` state dict (keys ``features.N.weight``; classifier keys
            are ignored) or one of ``vgg19().features`` alone; None keeps random weights (tests).
            The caller loads the file; this class downloads nothing.

    Raises:
        WeightsError: The state dict lacks or mis-shapes a needed feature layer.
    """

    def __init__(self, state_dict: Mapping[str, torch.Tensor] | None) -> None:
        super().__init__()
        self.features = vgg19_features()[: SLICE_BOUNDS[-1]]
        if state_dict is not None:
            try:
                self.features.load_state_dict(_features_state(state_dict, SLICE_BOUNDS[-1]))
            except RuntimeError as err:
                raise WeightsError(
                    f"the VGG19 state dict does not fit torchvision's vgg19 layout: {err}",
                    fix="pass the state dict of torchvision.models.vgg19 (ImageNet weights)",
                ) from err
        self.features.requires_grad_(False)
        self.features.eval()

    def train(self, mode: bool = True) -> VGG19Perceptual:
        """Keep the frozen VGG in eval mode whatever the trainer asks."""
        super().train(mode)
        self.features.eval()
        return self

    def extract(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Features at relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1 of a (B, 3, H, W) image."""
        out = []
        x = image
        for start, stop in itertools.pairwise(SLICE_BOUNDS):
            for index in range(start, stop):
                x = self.features[index](x)
            out.append(x)
        return out

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Scalar perceptual loss of ``fake`` against ``real`` (both (B, 3, H, W) in [-1, 1])."""
        loss = fake.new_zeros(())
        for weight, f, r in zip(LAYER_WEIGHTS, self.extract(fake), self.extract(real), strict=True):
            loss = loss + weight * F.l1_loss(f, r.detach())
        return loss
