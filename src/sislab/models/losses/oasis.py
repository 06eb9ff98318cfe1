"""OASIS's losses: class-balanced N+1-class cross-entropy and the LabelMix regulariser.

Follows boschresearch/OASIS ``models/losses.py`` and ``models.py`` (``generate_labelmix``). The
discriminator's channel 0 is "fake"; a real pixel of class c (0-based) has target c + 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_balance_weights(
    classes: torch.Tensor,
    num_classes: int,
    ignore_class: int | None,
    counts: torch.Tensor | None = None,
):
    """OASIS ``get_class_balancing``: per-pixel weight ``numel / (K * count_c)`` of its class.

    Args:
        classes: (B, H, W) int64 class ids.
        num_classes: Number of classes N.
        ignore_class: A class whose pixels get weight 0 (OASIS: the don't-care class), or None.
        counts: (N,) pixels per class to balance by (None: those of ``classes``); under DDP the
            counts of all ranks' batches, so that the weights are those of the global batch.

    Returns:
        (B, H, W) weights; K is the number of classes present (the ignored one excluded).
    """
    if counts is None:
        counts = torch.bincount(classes.reshape(-1), minlength=num_classes).float()
    counts = counts.clone()
    numel = counts.sum()  # the pixels counted, before the ignored class is dropped
    if ignore_class is not None:
        counts[ignore_class] = 0
    present = (counts > 0).sum()
    # OASIS: reciprocal(count) * numel(label) / (K * N), with numel(label) = B*N*H*W.
    coefficients = numel / (present * counts)
    coefficients = torch.where(counts > 0, coefficients, torch.zeros_like(coefficients))
    return coefficients[classes]


def n1_cross_entropy(
    logits: torch.Tensor,
    classes: torch.Tensor,
    for_real: bool,
    class_balancing: bool = True,
    ignore_class: int | None = None,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """OASIS's adversarial loss: per-pixel CE over N+1 classes.

    Args:
        logits: (B, N + 1, H, W) discriminator output.
        classes: (B, H, W) int64 class ids in ``[0, N)``.
        for_real: Targets are the classes (+1), class-balanced; else every pixel is "fake" (0),
            unweighted (OASIS uses for_real=True for D on real images and for G on fakes).
        class_balancing: Weight real targets by ``class_balance_weights``.
        ignore_class: Passed to ``class_balance_weights``.
        counts: Passed to ``class_balance_weights`` (None: the batch's own class counts).

    Returns:
        Scalar loss, the mean over pixels.
    """
    if not for_real:
        target = torch.zeros_like(classes)
        return F.cross_entropy(logits, target)
    loss = F.cross_entropy(logits, classes + 1, reduction="none")
    if class_balancing:
        loss = loss * class_balance_weights(classes, logits.shape[1] - 1, ignore_class, counts)
    return loss.mean()


def labelmix_mask(classes: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """OASIS ``generate_labelmix``'s mask: one random bit per class present in the batch.

    Args:
        classes: (B, H, W) int64 class ids.
        num_classes: Number of classes N; bits are drawn for all N without reading the batch's
            largest id back to the host (a device sync per step). None: up to the largest id.

    Returns:
        (B, 1, H, W) float mask, 1 where the real image is taken. (The official in-place loop can
        reassign a class whose id equals an earlier bit; here every class gets exactly one bit.)
    """
    num = num_classes if num_classes is not None else int(classes.max().item()) + 1
    bits = torch.randint(0, 2, (num,), device=classes.device)
    return bits[classes].unsqueeze(1).float()


def labelmix_images(mask: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``mask * real + (1 - mask) * fake``, the LabelMix input of D."""
    return mask * real + (1 - mask) * fake


def labelmix_loss(
    mask: torch.Tensor,
    logits_mixed: torch.Tensor,
    logits_fake: torch.Tensor,
    logits_real: torch.Tensor,
) -> torch.Tensor:
    """OASIS ``loss_labelmix``: MSE between D(mixed) and the same mix of D(real) and D(fake)."""
    target = mask * logits_real + (1 - mask) * logits_fake
    return F.mse_loss(logits_mixed, target)
