"""SPADE's training procedure (also used by the methods that keep SPADE's recipe).

One iteration, as NVlabs/SPADE's Pix2PixTrainer: a generator step (hinge G loss, feature matching,
VGG19 perceptual, KL with the encoder) then a discriminator step on a freshly generated, detached
fake (SPADE regenerates it under no_grad after the G update). Fake and real go through D in one
concatenated batch, as SPADE's ``discriminate``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn
from torch.nn.utils import parametrize

from sislab.models.encoders.conv import reparameterize
from sislab.models.geometry import DatasetGeometry
from sislab.models.losses.feature_matching import feature_matching_loss
from sislab.models.losses.hinge import hinge_d_loss, hinge_g_loss
from sislab.models.losses.kl import kl_divergence
from sislab.models.losses.perceptual import VGG19Perceptual
from sislab.models.registry import Method
from sislab.models.semantic_input import semantic_input
from sislab.spec.models import LossesSpec, TrainSpec, accumulation_steps, decay_epochs
from sislab.trainers.procedures.base import (
    AdversarialSchedules,
    ProcedureRuntime,
    alternating_step,
)
from sislab.trainers.procedures.schedule import adam, linear_decay
from sislab.trainers.procedures.switches import (
    channels_last_batch,
    configure_backends,
    prepare_module,
    switch_notes,
    to_channels_last,
)

logger = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)


def _split(outputs: list[list[torch.Tensor]], n_fake: int):
    fake = [[f[:n_fake] for f in scale] for scale in outputs]
    real = [[f[n_fake:] for f in scale] for scale in outputs]
    return fake, real


class SpadeProcedure(AdversarialSchedules):
    """Networks, losses and optimisers of a SPADE-recipe method.

    Args:
        method: Registry entry (builders).
        model_cfg: The spec's ``model:`` section.
        geometry: Label channels and resolution.
        train: The spec's ``train:`` section (learning rates, betas, precision, epochs).
        losses: The spec's ``losses:`` section (weights; 0 switches a term off).
        runtime: Device, DDP wrapping, VGG19 weights.
    """

    def __init__(
        self,
        method: Method,
        model_cfg: BaseModel,
        geometry: DatasetGeometry,
        train: TrainSpec,
        losses: LossesSpec,
        runtime: ProcedureRuntime,
    ) -> None:
        self.geometry = geometry
        self.weights = losses
        self.device = runtime.device
        self.world_size = runtime.world_size
        self.precision = train.precision
        self.train_spec = train
        # Micro-batches per G/D step (alternating_step); micro_batch_size: auto's probe sets it.
        self.accumulation = accumulation_steps(train, runtime.world_size)
        configure_backends(self.device, train)
        runtime.notes.update(switch_notes(train))
        generator = self._build_generator(method, model_cfg, geometry).to(self.device)
        generator = prepare_module(generator, train)
        discriminator = method.build_discriminator(model_cfg, geometry).to(self.device)
        discriminator = prepare_module(discriminator, train)
        encoder = method.build_encoder(model_cfg, geometry)
        self.generator = runtime.wrap(generator)
        self.discriminator = runtime.wrap(discriminator)
        self.encoder = None
        if encoder is not None:
            encoder = prepare_module(encoder.to(self.device), train, compile_it=False)
            self.encoder = runtime.wrap(encoder)
        self.perceptual = self._build_perceptual(losses, runtime)
        if self.perceptual is not None and train.channels_last:
            to_channels_last(self.perceptual)
        # The G step can run D on the real half without autograd only if D has no batch
        # statistics (all of sislab's Ds: instance norm or none); see generator_losses.
        self.split_critic = not any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()
        )
        g_params = list(_unwrap(self.generator).parameters())
        if self.encoder is not None:
            g_params += list(_unwrap(self.encoder).parameters())
        self.opt_g = adam(g_params, train.lr_g, train.betas)
        self.opt_d = adam(_unwrap(self.discriminator).parameters(), train.lr_d, train.betas)
        self.sched_g = linear_decay(self.opt_g, train.epochs, decay_epochs(train))
        self.sched_d = linear_decay(self.opt_d, train.epochs, decay_epochs(train))
        use_scaler = train.precision == "fp16"
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=use_scaler)

    @staticmethod
    def needs_vgg19(model_cfg: BaseModel, losses: LossesSpec) -> bool:
        """Whether the run needs the VGG19 weights (the builder loads them only then)."""
        del model_cfg
        return losses.perceptual > 0

    def _build_generator(self, method: Method, model_cfg: BaseModel, geometry: DatasetGeometry):
        """The generator, before it is moved and wrapped (a method may freeze parts of it)."""
        return method.build_generator(model_cfg, geometry)

    def _build_perceptual(self, losses: LossesSpec, runtime: ProcedureRuntime):
        if losses.perceptual == 0:
            runtime.notes["sislab.perceptual_loss"] = "off (losses.perceptual is 0)"
            return None
        if runtime.vgg19_state is None:
            note = "off: no vgg19 weights (set weights.paths.vgg19; see docs/weights.md)"
            runtime.notes["sislab.perceptual_loss"] = note
            logger.warning("VGG19 perceptual loss is %s", note)
            return None
        runtime.notes["sislab.perceptual_loss"] = "on (vgg19)"
        return VGG19Perceptual(runtime.vgg19_state).to(self.device).eval()

    def _autocast(self):
        dtype = AUTOCAST_DTYPES.get(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _semantics(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        semantics = semantic_input(batch["label"], batch.get("instance"), self.geometry)
        return channels_last_batch({"semantics": semantics}, self.train_spec)["semantics"]

    def _generate(self, semantics, image, generator) -> tuple[torch.Tensor, dict[str, Any]]:
        extra: dict[str, Any] = {}
        z = None
        if self.encoder is not None:
            mu, logvar = self._encode(image, semantics)
            z = reparameterize(mu, logvar)
            extra["mu"], extra["logvar"] = mu, logvar
        return self._unpack(generator(semantics, z), extra), extra

    def _encode(self, image, semantics) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of the posterior; SPADE's encoder reads the image only."""
        del semantics
        return self.encoder(image)

    def _prior_z(self, semantics: torch.Tensor) -> torch.Tensor:
        """A latent drawn from ``N(0, I)`` for sampling (SPADE's test-time z)."""
        z_dim = _unwrap(self.encoder).fc_mu.out_features
        return torch.randn(semantics.shape[0], z_dim, device=semantics.device)

    def _unpack(self, output: Any, extra: dict[str, Any]) -> torch.Tensor:
        """The image of a generator output; methods whose generator returns more override this
        and put the other outputs in ``extra``."""
        del extra
        return output

    def _feature_matching(self, pred_fake, pred_real) -> torch.Tensor:
        """Unweighted feature-matching loss (SPADE's ``GAN_Feat`` before ``lambda_feat``)."""
        return feature_matching_loss(pred_fake, pred_real)

    def _extra_generator_terms(self, real, extra: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Weighted generator terms a method adds to SPADE's; none here."""
        del real, extra
        return {}

    def generator_losses(self, batch, semantics) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Generator-side losses of one batch; the total is weighted as the spec says."""
        real = batch["image"]
        fake, extra = self._generate(semantics, real, self.generator)
        pred_fake, pred_real = self._critic_outputs(semantics, fake, real)
        terms = {"g_gan": hinge_g_loss(pred_fake) * self.weights.gan}
        if self.weights.feat_match > 0:
            terms["g_feat"] = self._feature_matching(pred_fake, pred_real) * self.weights.feat_match
        if self.perceptual is not None:
            terms["g_vgg"] = self.perceptual(fake.float(), real.float()) * self.weights.perceptual
        if "mu" in extra:
            # The KL is a sum over the batch, and the spec's batch is global: DDP averages the
            # ranks' gradients, so each rank's sum counts world_size times to give the gradient
            # of the sum over all ranks' rows (2 ranks x B == 1 rank x 2B); likewise the
            # accumulation divides every micro-batch's loss by the number of micro-batches.
            terms["g_kl"] = kl_divergence(extra["mu"].float(), extra["logvar"].float()) * (
                self.weights.kl * self.world_size * self.accumulation
            )
        terms.update(self._extra_generator_terms(real, extra))
        return sum(terms.values()), terms

    def _critic_outputs(self, semantics, fake, real):
        """D's outputs on the fake (with autograd, for G's gradients) and on the real image.

        SPADE's ``discriminate`` runs fake and real as one batch. Nothing reads a gradient of the
        real half (feature matching detaches the real features), so with a D without batch
        statistics the real half runs under no_grad: the same outputs, no backward through it
        and none of its activations kept. ``parametrize.cached()`` makes both calls use one
        spectral-norm weight (one power iteration, as one batched call does).
        """
        # G step: D is only a critic here; no DDP sync and no D weight gradients.
        critic = _unwrap(self.discriminator)
        critic.requires_grad_(False)
        try:
            if not self.split_critic:
                outputs = critic(torch.cat([semantics, semantics]), torch.cat([fake, real]))
                return _split(outputs, fake.shape[0])
            with parametrize.cached():
                pred_fake = critic(semantics, fake)
                with torch.no_grad():
                    pred_real = critic(semantics, real)
            return pred_fake, pred_real
        finally:
            critic.requires_grad_(True)

    def discriminator_losses(
        self, batch, semantics
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Hinge D loss on a fake regenerated under no_grad and the real image."""
        real = batch["image"]
        with torch.no_grad():
            fake, _ = self._generate(semantics, real, self.generator)
        outputs = self.discriminator(
            torch.cat([semantics, semantics]), torch.cat([fake.detach(), real])
        )
        pred_fake, pred_real = _split(outputs, fake.shape[0])
        terms = {
            "d_fake": hinge_d_loss(pred_fake, is_real=False),
            "d_real": hinge_d_loss(pred_real, is_real=True),
        }
        return sum(terms.values()), terms

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One G step then one D step; returns detached losses (``loss_g``, ``loss_d`` and terms)."""
        return alternating_step(self, channels_last_batch(batch, self.train_spec))

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images for the batch's layouts from the unwrapped generator in eval mode.

        With an encoder, z is drawn from N(0, I) as SPADE does at test time.
        """
        generator = _unwrap(self.generator)
        was_training = generator.training
        generator.eval()
        try:
            semantics = self._semantics(batch)
            z = None
            if self.encoder is not None:
                z = self._prior_z(semantics)
            return self._unpack(generator(semantics, z), {}).float()
        finally:
            generator.train(was_training)

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers, schedulers and scalers."""
        state = {
            "generator": _unwrap(self.generator).state_dict(),
            "discriminator": _unwrap(self.discriminator).state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
        }
        if self.encoder is not None:
            state["encoder"] = _unwrap(self.encoder).state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s output."""
        _unwrap(self.generator).load_state_dict(state["generator"])
        _unwrap(self.discriminator).load_state_dict(state["discriminator"])
        if self.encoder is not None:
            _unwrap(self.encoder).load_state_dict(state["encoder"])
        for name in ("opt_g", "opt_d", "sched_g", "sched_d", "scaler_g", "scaler_d"):
            getattr(self, name).load_state_dict(state[name])
