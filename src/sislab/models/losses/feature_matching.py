"""pix2pixHD/SPADE discriminator feature-matching loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def feature_matching_loss(
    fake_outputs: list[list[torch.Tensor]], real_outputs: list[list[torch.Tensor]]
) -> torch.Tensor:
    """L1 between D features of fake and (detached) real images, final logits excluded.

    ``sum_i sum_j L1(fake[i][j], real[i][j]) / num_d`` over scales i and intermediate outputs j;
    SPADE's ``GAN_Feat`` term is this times ``lambda_feat`` (10).

    Args:
        fake_outputs: Multi-scale D output on generated images (per-scale lists, last = logits).
        real_outputs: The same on real images; detached here.

    Returns:
        Scalar loss.
    """
    num_d = len(fake_outputs)
    loss = fake_outputs[0][0].new_zeros(())
    for fake_scale, real_scale in zip(fake_outputs, real_outputs, strict=True):
        for fake, real in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            loss = loss + F.l1_loss(fake, real.detach()) / num_d
    return loss
