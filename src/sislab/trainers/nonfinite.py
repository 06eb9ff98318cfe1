"""Guarding optimiser steps against non-finite gradients (``train.on_nonfinite``).

A step pre-hook on each optimiser checks the gradients before the update; when one is NaN or inf
it drops every gradient of that optimiser (``p.grad = None``), so Adam leaves the weights and its
moments untouched, as if the step had not happened. With fp16 the ``GradScaler`` already skips such
steps before the optimiser is called; the guard sees that as a step that never reached the hook.
The check costs one fused norm and one host sync per optimiser step.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import torch

logger = logging.getLogger(__name__)

SIDES = ("g", "d")  # every procedure keeps its optimisers as opt_g / opt_d (procedures/*.py)


def grads_finite(grads: list[torch.Tensor]) -> bool:
    """Whether every gradient element is finite (one fused norm per tensor, one host sync)."""
    if not grads:
        return True
    norms = torch._foreach_norm(grads)  # a norm is non-finite iff some element is
    return bool(torch.isfinite(torch.stack(norms)).all())


class StepGuard:
    """Refuses optimiser steps with non-finite gradients and records which steps ran.

    Args:
        procedure: The training procedure; its ``opt_g`` and ``opt_d`` are guarded.
    """

    def __init__(self, procedure: Any) -> None:
        self.refused: list[str] = []  # sides refused in the current iteration
        self.stepped: list[str] = []  # sides whose optimiser was called in the current iteration
        self.sides = [side for side in SIDES if hasattr(procedure, f"opt_{side}")]
        self._handles = [
            getattr(procedure, f"opt_{side}").register_step_pre_hook(partial(self._check, side))
            for side in self.sides
        ]

    def _check(self, side: str, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        del args, kwargs
        self.stepped.append(side)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if grads_finite([p.grad for p in params if p.grad is not None]):
            return
        for p in params:
            p.grad = None  # torch optimisers skip parameters without a gradient
        self.refused.append(side)

    def begin(self) -> None:
        """Forget the previous iteration's events."""
        self.refused, self.stepped = [], []

    def nonfinite_sides(self, losses: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        """Sides of this iteration that saw non-finite values.

        Returns:
            ``(bad, overflow)``: sides whose gradients were refused or whose loss is not finite
            (``bad``), and fp16 steps the scaler skipped although the loss was finite
            (``overflow``, a normal event while the loss scale calibrates).
        """
        bad, overflow = list(self.refused), []
        for side in self.sides:
            if side in self.stepped or side in bad:
                continue
            loss = losses.get(f"loss_{side}")
            if loss is not None and not bool(torch.isfinite(loss).all()):
                bad.append(side)
            else:
                overflow.append(side)
        return bad, overflow

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
