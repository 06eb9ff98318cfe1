"""KL divergence of the VAE encoder's Gaussian from N(0, I), summed as in SPADE's code."""

from __future__ import annotations

import torch


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))`` over batch and latent dims (SPADE KLDLoss).

    Args:
        mu: (B, z_dim) posterior means.
        logvar: (B, z_dim) posterior log-variances.

    Returns:
        Scalar KL, a sum (not a mean); SPADE weights it by ``lambda_kld = 0.05``.
    """
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
