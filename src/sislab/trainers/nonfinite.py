"""Guarding optimiser steps against non-finite losses and gradients (``train.on_nonfinite``).

The guard records the loss each side's ``generator_losses``/``discriminator_losses`` returns, and
a step pre-hook on that side's optimiser checks it with the gradients before the update; when one
is NaN or inf it drops every gradient of the optimiser (``p.grad = None``), so Adam leaves the
weights and its moments untouched, as if the step had not happened. With fp16 the ``GradScaler``
already skips such steps before the optimiser is called; the guard sees that as a step that never
reached the hook.
The check costs one fused norm and one host sync per optimiser step.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import torch

logger = logging.getLogger(__name__)

# Every procedure keeps its optimisers as opt_g / opt_d and computes each side's loss in
# generator_losses / discriminator_losses (procedures/spade.py, oasis.py).
SIDES = {"g": "generator_losses", "d": "discriminator_losses"}


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every element is finite (one fused norm per tensor, one host sync)."""
    if not tensors:
        return True
    # A norm is non-finite iff an element is.
    norms = torch._foreach_norm([t.detach().float() for t in tensors])
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
        self._losses: dict[str, torch.Tensor] = {}
        self._procedure = procedure
        self._wrapped: dict[str, Any] = {}
        for side in self.sides:
            name = SIDES[side]
            if hasattr(procedure, name):
                self._wrapped[name] = vars(procedure).get(name)  # an instance override, if any
                setattr(procedure, name, self._recording(side, getattr(procedure, name)))
        self._handles = [
            getattr(procedure, f"opt_{side}").register_step_pre_hook(partial(self._check, side))
            for side in self.sides
        ]

    def _recording(self, side: str, compute):
        def losses(batch, semantics):
            total, terms = compute(batch, semantics)
            self._losses[side] = total
            return total, terms

        return losses

    def _check(self, side: str, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        del args, kwargs
        self.stepped.append(side)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        loss = self._losses.get(side)
        values = [p.grad for p in params if p.grad is not None] + (
            [loss] if loss is not None else []
        )
        if all_finite(values):
            return
        for p in params:
            p.grad = None  # torch optimisers skip parameters without a gradient
        self.refused.append(side)

    def begin(self) -> None:
        """Forget the previous iteration's events."""
        self.refused, self.stepped, self._losses = [], [], {}

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
        for name, override in self._wrapped.items():
            if override is None:
                delattr(self._procedure, name)
            else:
                setattr(self._procedure, name, override)
        self._wrapped = {}
