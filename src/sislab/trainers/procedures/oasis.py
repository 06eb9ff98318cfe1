"""OASIS's training procedure (Sushko et al., ICLR 2021), also used by VA-OASIS.

One iteration as boschresearch/OASIS ``train.py``: a generator step (class-balanced N+1
cross-entropy of D on the fake, optional VGG), a discriminator step on a fake regenerated under
no_grad (real: balanced N+1 CE, fake: "fake" CE, LabelMix MSE), then the EMA update of the
sampling generator. Fake, real and LabelMix images go through D in three separate calls, in
OASIS's order: the U-Net D has no batch statistics, but each training-mode call advances its
spectral-norm power iteration, so OASIS's real and LabelMix passes see later sigma estimates
than its fake pass (one concatenated call would use the first one for all three).

Optimisers: Adam with ``train.lr_g``, ``train.lr_d``, ``train.betas`` (OASIS: 1e-4 / 4e-4,
(0, 0.999); Cityscapes lr_g 4e-4) and the spec's ``train.lr_decay_epochs`` schedule (OASIS keeps
the rate constant: set ``lr_decay_epochs: 0``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from sislab.models.geometry import DatasetGeometry
from sislab.models.losses.oasis import (
    labelmix_images,
    labelmix_loss,
    labelmix_mask,
    n1_cross_entropy,
)
from sislab.models.methods.oasis import OasisFields
from sislab.models.registry import Method
from sislab.spec.models import LossesSpec, TrainSpec, accumulation_steps, decay_epochs
from sislab.trainers.procedures.base import (
    AdversarialSchedules,
    ProcedureRuntime,
    alternating_step,
)
from sislab.trainers.procedures.eager_power_iteration import power_iterations_outside_graph
from sislab.trainers.procedures.schedule import adam, linear_decay
from sislab.trainers.procedures.spade import SpadeProcedure, _unwrap
from sislab.trainers.procedures.switches import (
    channels_last_batch,
    configure_backends,
    prepare_module,
    switch_notes,
    to_channels_last,
)

logger = logging.getLogger(__name__)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """OASIS ``update_EMA``: ``ema <- decay * ema + (1 - decay) * model`` over the whole state
    dict (BN running statistics and spectral-norm vectors included); integer buffers are copied.
    """
    source = model.state_dict()
    floats, sources = [], []
    for key, value in ema.state_dict().items():
        if value.is_floating_point():
            floats.append(value)
            sources.append(source[key].detach().to(value.dtype))
        else:
            value.copy_(source[key])
    # The same mul_ then add_ per tensor, as a few multi-tensor kernels instead of 2 per tensor.
    torch._foreach_mul_(floats, decay)
    torch._foreach_add_(floats, sources, alpha=1 - decay)


class OasisProcedure(AdversarialSchedules):
    """Networks, losses, optimisers and EMA generator of OASIS-recipe methods.

    Args:
        method: Registry entry (builders).
        model_cfg: The spec's ``model:`` section (an ``OasisFields`` subclass).
        geometry: Label channels and resolution.
        train: The spec's ``train:`` section.
        losses: The spec's ``losses:`` section: ``gan`` weights G's adversarial term and
            ``perceptual`` the VGG term when ``model.use_vgg_loss``; the others do not apply.
        runtime: Device, DDP wrapping, VGG19 weights.
    """

    def __init__(
        self,
        method: Method,
        model_cfg: OasisFields,
        geometry: DatasetGeometry,
        train: TrainSpec,
        losses: LossesSpec,
        runtime: ProcedureRuntime,
    ) -> None:
        self.geometry = geometry
        self.cfg = model_cfg
        self.weights = losses
        self.device = runtime.device
        self.world_size = runtime.world_size
        self.precision = train.precision
        self.train_spec = train
        self.accumulation = accumulation_steps(train, runtime.world_size)  # see SpadeProcedure
        self._step_counts: torch.Tensor | None = None
        configure_backends(self.device, train)
        runtime.notes.update(switch_notes(train))
        generator = method.build_generator(model_cfg, geometry).to(self.device)
        discriminator = method.build_discriminator(model_cfg, geometry).to(self.device)
        if train.compile:
            # The D step calls D three times before its backward (fake, real, LabelMix): the
            # spectral norms' updates must stay out of the compiled graph (pytorch#185497).
            power_iterations_outside_graph(discriminator)
        discriminator = prepare_module(discriminator, train)
        self.ema: nn.Module | None = None
        if model_cfg.ema_decay is not None:
            # OASIS models.py: netEMA = deepcopy(netG) right after init (eager: only sampled).
            self.ema = copy.deepcopy(generator).requires_grad_(False)
            prepare_module(self.ema, train, compile_it=False)
        generator = prepare_module(generator, train)
        self.generator = runtime.wrap(generator)
        self.discriminator = runtime.wrap(discriminator)
        self.perceptual = None
        if model_cfg.use_vgg_loss:
            self.perceptual = SpadeProcedure._build_perceptual(self, losses, runtime)
            if self.perceptual is not None and train.channels_last:
                to_channels_last(self.perceptual)
        else:
            runtime.notes["sislab.perceptual_loss"] = "off (model.use_vgg_loss is false)"
        self.opt_g = adam(_unwrap(self.generator).parameters(), train.lr_g, train.betas)
        self.opt_d = adam(_unwrap(self.discriminator).parameters(), train.lr_d, train.betas)
        self.sched_g = linear_decay(self.opt_g, train.epochs, decay_epochs(train))
        self.sched_d = linear_decay(self.opt_d, train.epochs, decay_epochs(train))
        use_scaler = train.precision == "fp16"
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=use_scaler)

    @staticmethod
    def needs_vgg19(model_cfg: OasisFields, losses: LossesSpec) -> bool:
        """Whether the run needs the VGG19 weights: only with ``model.use_vgg_loss``."""
        return model_cfg.use_vgg_loss and losses.perceptual > 0

    _autocast = SpadeProcedure._autocast

    _semantics = SpadeProcedure._semantics

    def _class_counts(self, classes: torch.Tensor) -> torch.Tensor | None:
        """Pixels per class over all ranks' batches, for class balancing (None: off).

        OASIS balances by the batch's class frequencies; the spec's batch is global, so the
        counts are summed over the ranks (2 ranks x B == 1 rank x 2B) and, with accumulation,
        taken once per step from the whole batch (``train_step``), not per micro-batch.
        """
        if not self.cfg.class_balancing:
            return None
        if self._step_counts is not None:
            return self._step_counts
        counts = torch.bincount(classes.reshape(-1), minlength=self.geometry.num_classes).float()
        if self.world_size > 1 and dist.is_initialized():
            dist.all_reduce(counts)
        return counts

    def _adversarial(self, logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return n1_cross_entropy(
            logits.float(),
            classes,
            True,
            self.cfg.class_balancing,
            self.cfg.ignore_class,
            counts=self._class_counts(classes),
        )

    def generator_losses(self, batch, semantics) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's adversarial term (fakes classified as their classes) and the optional VGG term."""
        classes = batch["label"][:, 0].long()
        fake = self.generator(semantics)
        critic = _unwrap(self.discriminator)
        critic.requires_grad_(False)
        try:
            logits = critic(fake)
        finally:
            critic.requires_grad_(True)
        terms = {"g_gan": self._adversarial(logits, classes) * self.weights.gan}
        if self.perceptual is not None:
            real = batch["image"]
            terms["g_vgg"] = self.perceptual(fake.float(), real.float()) * self.weights.perceptual
        return sum(terms.values()), terms

    def discriminator_losses(
        self, batch, semantics
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """N+1 CE on real and fake images plus the weighted LabelMix term."""
        classes = batch["label"][:, 0].long()
        real = batch["image"]
        with torch.no_grad():
            fake = self.generator(semantics).detach()
        # OASIS models.py: D(fake), D(real), then D(LabelMix image), one call each (see the
        # module docstring: every call is one spectral-norm power-iteration step).
        logits_fake = self.discriminator(fake).float()
        logits_real = self.discriminator(real).float()
        terms = {
            "d_fake": n1_cross_entropy(logits_fake, classes, False),
            "d_real": self._adversarial(logits_real, classes),
        }
        if self.cfg.labelmix_weight > 0:
            mask = labelmix_mask(classes, self.geometry.num_classes).to(real.dtype)
            logits_mixed = self.discriminator(labelmix_images(mask, real, fake)).float()
            lm = labelmix_loss(mask, logits_mixed, logits_fake, logits_real)
            terms["d_labelmix"] = lm * self.cfg.labelmix_weight
        return sum(terms.values()), terms

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """G step, D step, EMA update; returns detached losses (``loss_g``, ``loss_d``, terms)."""
        if self.accumulation > 1:
            self._step_counts = self._class_counts(batch["label"][:, 0].long())
        try:
            out = alternating_step(self, channels_last_batch(batch, self.train_spec))
        finally:
            self._step_counts = None
        if self.ema is not None:
            update_ema(self.ema, _unwrap(self.generator), self.cfg.ema_decay)
        return out

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images from the EMA generator (G without EMA) in eval mode.

        OASIS refreshes the EMA net's BN statistics on ~50 training batches before FID; here the
        EMA of G's running statistics is used as is (the procedure sees no training data here).
        """
        generator = self.ema if self.ema is not None else _unwrap(self.generator)
        was_training = generator.training
        generator.eval()
        try:
            return generator(self._semantics(batch)).float()
        finally:
            generator.train(was_training)

    def state_dict(self) -> dict[str, Any]:
        """Networks (EMA included), optimisers, schedulers and scalers."""
        state = {
            "generator": _unwrap(self.generator).state_dict(),
            "discriminator": _unwrap(self.discriminator).state_dict(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        for name in ("opt_g", "opt_d", "sched_g", "sched_d", "scaler_g", "scaler_d"):
            state[name] = getattr(self, name).state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s output."""
        _unwrap(self.generator).load_state_dict(state["generator"])
        _unwrap(self.discriminator).load_state_dict(state["discriminator"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        for name in ("opt_g", "opt_d", "sched_g", "sched_d", "scaler_g", "scaler_d"):
            getattr(self, name).load_state_dict(state[name])
