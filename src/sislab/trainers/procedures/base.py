"""The interface between the training loop and a method's optimisation procedure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from sislab.models.geometry import DatasetGeometry
from sislab.trainers.procedures.accumulation import PowerIterationReplay, micro_batches, no_sync


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


def alternating_step(procedure, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One generator step then one discriminator step, as SPADE's and OASIS's trainers do.

    ``procedure`` provides ``_semantics``, ``_autocast``, ``generator_losses``,
    ``discriminator_losses``, ``opt_g``/``opt_d`` with their ``scaler_g``/``scaler_d``, the
    networks ``generator``, ``discriminator`` (and ``encoder``), and ``accumulation``: the
    micro-batches each step accumulates over (accumulation.py).

    Returns:
        Detached ``loss_g``, ``loss_d`` and every loss term, means over the whole batch.
    """
    chunks = micro_batches(batch, procedure.accumulation)
    semantics = [procedure._semantics(chunk) for chunk in chunks]
    encoder = getattr(procedure, "encoder", None)  # only the VAE methods have one
    nets = [procedure.generator, encoder, procedure.discriminator]
    out = _accumulated_side(procedure, "g", chunks, semantics, [procedure.generator, encoder], nets)
    out |= _accumulated_side(procedure, "d", chunks, semantics, [procedure.discriminator], nets)
    return out


def _accumulated_side(procedure, side: str, chunks, semantics, trained, nets):
    """One optimiser step of ``side`` over the micro-batches; returns the mean detached losses."""
    optimizer, scaler = getattr(procedure, f"opt_{side}"), getattr(procedure, f"scaler_{side}")
    compute = procedure.generator_losses if side == "g" else procedure.discriminator_losses
    num = len(chunks)
    replay = PowerIterationReplay(nets if num > 1 else [])
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, torch.Tensor] = {}
    for i, (chunk, semantic) in enumerate(zip(chunks, semantics, strict=True)):
        with no_sync(trained, i < num - 1), replay.micro_batch(i):
            with procedure._autocast():
                loss, terms = compute(chunk, semantic)
            # Every loss is a mean over its micro-batch: 1/k of each is the whole batch's mean.
            scaler.scale(loss / num if num > 1 else loss).backward()
        for key, value in {f"loss_{side}": loss, **terms}.items():
            sums[key] = sums.get(key, 0) + value.detach() / num
    scaler.step(optimizer)
    scaler.update()
    # Nothing reads the gradients after the step: freed now, the other side's step does not
    # hold them (the official trainers keep them until their own next zero_grad).
    optimizer.zero_grad(set_to_none=True)
    return sums


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
