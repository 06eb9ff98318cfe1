"""Instance norm that keeps a channels-last activation in its layout.

torch's ``instance_norm`` runs as a batch norm over a ``(1, B*C, H, W)`` view, which a
channels-last (NHWC) tensor does not have: it copies its input to NCHW and returns NCHW, and the
next convolution copies that back (SPADE's discriminator at 256x512: 27 ms for norm and copies
of a [2, 128, 65, 129] activation, forward and backward, against 7 ms here). ``group_norm``
with one group per channel takes the same statistics (each channel's mean and variance over
H x W, the same eps, no affine) and has NHWC kernels on CPU and CUDA; its sums run in another
order (rounding aside). ``train.channels_last`` turns a network's instance norms into this
class (``sislab.trainers.procedures.switches.to_channels_last``); NCHW inputs take torch's own
``instance_norm``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.layout import stored_channels_last


class ChannelsLastInstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` without affine parameters or running statistics that normalises a
    channels-last input as ``group_norm`` with one group per channel, in its layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if stored_channels_last(x):
            return F.group_norm(x, x.shape[1], eps=self.eps)
        return super().forward(x)

    def stateless(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x -> norm(x)``: this norm has no state to update (``modulation.stateless_norm``)."""
        return self.forward


def use_channels_last_instance_norms(module: nn.Module) -> int:
    """Turn ``module``'s instance norms without affine parameters or running statistics into
    :class:`ChannelsLastInstanceNorm2d`, in place (no parameters or buffers change).

    Returns:
        How many were turned.
    """
    turned = 0
    for sub in module.modules():
        if type(sub) is nn.InstanceNorm2d and not sub.affine and not sub.track_running_stats:
            sub.__class__ = ChannelsLastInstanceNorm2d
            turned += 1
    return turned
