"""Learning-rate schedules and optimiser construction shared by the procedures."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from sislab.trainers.procedures.memory_order_step import MemoryOrderAdam


class LinearDecay:
    """SPADE's schedule as a LambdaLR factor: constant, then linear to 0 over the last epochs.

    SPADE code (pix2pix_trainer.update_learning_rate): after epoch e > niter the rate drops by
    lr/niter_decay, i.e. factor 1 - (e - niter) / niter_decay. A plain object (not a lambda) so
    that LambdaLR's state dict holds only numbers.

    Args:
        epochs: Total epochs.
        decay_epochs: Epochs of linear decay at the end (0: constant).
    """

    def __init__(self, epochs: int, decay_epochs: int) -> None:
        self.epochs = epochs
        self.decay_epochs = decay_epochs

    def __call__(self, epochs_done: int) -> float:
        constant = self.epochs - self.decay_epochs
        if self.decay_epochs == 0 or epochs_done <= constant:
            return 1.0
        return max(0.0, 1.0 - (epochs_done - constant) / self.decay_epochs)


def adam(
    params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float]
) -> torch.optim.Adam:
    """Adam as the SPADE family uses it, with torch's fused kernels on CPU and CUDA.

    The fused kernel computes the for-loop Adam's update (torch's own equivalence tests; ours in
    tests/trainers/test_switches.py) in one vectorised pass per parameter instead of ~10
    element-wise ops; torch's default on CPU is the for-loop, and its CPU ``foreach`` path loops
    over tensors too (~6x slower than fused on 22M parameters in one A/B on this 2-core CPU: on
    SPADE's 100M+ parameters the loop is a quarter of the step). Channels-last parameters step
    in their memory order (``MemoryOrderAdam``).
    """
    params = [p for p in params if p.requires_grad]
    if params and params[0].device.type in ("cpu", "cuda"):
        return MemoryOrderAdam(params, lr=lr, betas=betas, fused=True)
    return torch.optim.Adam(params, lr=lr, betas=betas)


def linear_decay(optimizer: torch.optim.Optimizer, epochs: int, decay_epochs: int):
    """A LambdaLR stepping once per epoch with ``LinearDecay``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearDecay(epochs, decay_epochs))
