"""The interface between the training loop and a method's optimisation procedure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from sislab.models.geometry import DatasetGeometry


@dataclass
class ProcedureRuntime:
    """What a procedure needs from the worker it runs in.

    Args:
        device: Device to train on.
        world_size: Number of DDP ranks.
        wrap: Wraps a module for data-parallel training (DDP when world_size > 1, identity otherwise).
        vgg19_state: VGG19 weights for the perceptual loss, or None when they are unavailable.
        notes: Filled by the procedure with what the run must say about itself (``tag -> text``),
            e.g. that the perceptual loss is off because no VGG19 weights were found.
    """

    device: torch.device
    world_size: int
    wrap: Any
    vgg19_state: dict[str, torch.Tensor] | None
    notes: dict[str, str] = field(default_factory=dict)


class Procedure(Protocol):
    """One method's optimisation: networks, losses, optimisers and schedules."""

    geometry: DatasetGeometry
    generator: nn.Module

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One generator step then one discriminator step; returns detached scalar losses."""
        ...

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Generate images (B, 3, H, W) in [-1, 1] for the batch's layouts, in eval mode."""
        ...

    def end_epoch(self, epochs_done: int) -> None:
        """Advance per-epoch schedules (learning-rate decay)."""
        ...

    def learning_rates(self) -> dict[str, float]:
        """Current learning rates, for logging."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers, schedulers and scaler as nested state dicts."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        ...


def alternating_step(procedure: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One generator step then one discriminator step, as SPADE's and OASIS's trainers do.

    ``procedure`` provides ``_semantics``, ``_autocast``, ``generator_losses``,
    ``discriminator_losses``, and ``opt_g``/``opt_d`` with their ``scaler_g``/``scaler_d``.

    Returns:
        Detached ``loss_g``, ``loss_d`` and every loss term.
    """
    semantics = procedure._semantics(batch)
    procedure.opt_g.zero_grad(set_to_none=True)
    with procedure._autocast():
        loss_g, g_terms = procedure.generator_losses(batch, semantics)
    procedure.scaler_g.scale(loss_g).backward()
    procedure.scaler_g.step(procedure.opt_g)
    procedure.scaler_g.update()

    procedure.opt_d.zero_grad(set_to_none=True)
    with procedure._autocast():
        loss_d, d_terms = procedure.discriminator_losses(batch, semantics)
    procedure.scaler_d.scale(loss_d).backward()
    procedure.scaler_d.step(procedure.opt_d)
    procedure.scaler_d.update()
    out = {"loss_g": loss_g.detach(), "loss_d": loss_d.detach()}
    out.update({k: v.detach() for k, v in (g_terms | d_terms).items()})
    return out


class AdversarialSchedules:
    """Per-epoch schedules of a procedure with ``opt_g``/``opt_d`` and ``sched_g``/``sched_d``."""

    def end_epoch(self, epochs_done: int) -> None:
        """Step the per-epoch learning-rate schedules of G and D."""
        del epochs_done
        self.sched_g.step()
        self.sched_d.step()

    def learning_rates(self) -> dict[str, float]:
        """Current learning rates of G and D."""
        return {"g": self.opt_g.param_groups[0]["lr"], "d": self.opt_d.param_groups[0]["lr"]}
