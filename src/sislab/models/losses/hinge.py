"""Hinge adversarial losses averaged over the scales of a multi-scale discriminator (SPADE)."""

from __future__ import annotations

import torch

DiscriminatorOutput = torch.Tensor | list[torch.Tensor] | list[list[torch.Tensor]]
"""A logit map, a list of per-scale logit maps, or per-scale lists of features (last = logits)."""


def _logits_per_scale(outputs: DiscriminatorOutput) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    # SPADE GANLoss.__call__: for a list of lists, only the last output of each scale is scored.
    return [o[-1] if isinstance(o, list | tuple) else o for o in outputs]


def hinge_d_loss(outputs: DiscriminatorOutput, is_real: bool) -> torch.Tensor:
    """Discriminator hinge term for real or fake inputs.

    Per scale ``mean(relu(1 - D))`` for real and ``mean(relu(1 + D))`` for fake, then the mean over
    scales (SPADE ``GANLoss(hinge, for_discriminator=True)``). SPADE's D loss is
    ``hinge_d_loss(fake, False) + hinge_d_loss(real, True)``.

    Args:
        outputs: Discriminator output (see ``DiscriminatorOutput``).
        is_real: Whether the outputs score real images.

    Returns:
        Scalar loss.
    """
    sign = -1.0 if is_real else 1.0
    terms = [torch.relu(1.0 + sign * logits).mean() for logits in _logits_per_scale(outputs)]
    return torch.stack(terms).mean()


def hinge_g_loss(outputs: DiscriminatorOutput) -> torch.Tensor:
    """Generator hinge term ``-mean(D(fake))`` per scale, averaged over scales.

    Args:
        outputs: Discriminator output on generated images.

    Returns:
        Scalar loss.
    """
    return torch.stack([-logits.mean() for logits in _logits_per_scale(outputs)]).mean()
