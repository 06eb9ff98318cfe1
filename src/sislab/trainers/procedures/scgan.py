"""SC-GAN's training procedure: SPADE's recipe plus the SVG regression loss L_s.

dvlab-research/SCGAN model/pix2pix_model.py ``compute_generator_loss`` is SPADE's with two
changes: the generator also returns the SVG's image prediction f_V^out(S), regressed to the real
image by ``rw_loss`` (l1 | l2 | vgg) times ``lambda_w_recon`` (2; CelebA 1), and with the FPSE
discriminator feature matching weights each of its 4 features by ``lambda_feat / 4``. Everything
else (hinge GAN 1, feature matching 10, VGG19 10, KL 0.05 with the VAE, the D step on a fake
regenerated under no_grad) is SPADE's and comes from :class:`SpadeProcedure`.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel

from sislab.errors import WeightsError
from sislab.models.discriminators.fpse import FPSEDiscriminator
from sislab.models.generators.scgan import ScganGenerator, ScganGeneratorOutput
from sislab.models.geometry import DatasetGeometry
from sislab.models.losses.perceptual import VGG19Perceptual
from sislab.models.methods.scgan import ScganConfig
from sislab.models.registry import Method
from sislab.spec.models import LossesSpec, TrainSpec
from sislab.trainers.procedures.base import ProcedureRuntime
from sislab.trainers.procedures.spade import SpadeProcedure, _unwrap

logger = logging.getLogger(__name__)


class ScganProcedure(SpadeProcedure):
    """Networks, losses and optimisers of SC-GAN (SPADE's, plus L_s and FPSE's FM weighting).

    The L_s option and weight are the model's (``model.svg_loss``, ``model.svg_loss_weight``)
    because the official configs set them per dataset (CelebA: 1). The generator term is
    ``g_svg`` and is absent with ``svg_loss: none``; the SVG's RGB head is then frozen, as its
    gradient is zero in the code with ``lambda_w_recon`` 0, and frozen parameters keep DDP's
    every-parameter-gets-a-gradient contract.

    Args:
        method: Registry entry (builders).
        model_cfg: The spec's ``model:`` section (``ScganConfig``).
        geometry: Label channels and resolution.
        train: The spec's ``train:`` section.
        losses: The spec's ``losses:`` section (gan, feat_match, perceptual, kl weights).
        runtime: Device, DDP wrapping, VGG19 weights.

    Raises:
        WeightsError: ``svg_loss: vgg`` without VGG19 weights (the term would silently vanish).
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
        if not isinstance(model_cfg, ScganConfig):
            raise TypeError(f"ScganProcedure needs a ScganConfig, got {type(model_cfg).__name__}")
        self.svg_loss = model_cfg.svg_loss
        self.svg_loss_weight = model_cfg.svg_loss_weight
        if self.svg_loss == "vgg" and runtime.vgg19_state is None:
            raise WeightsError(
                "model.svg_loss is 'vgg' but no VGG19 weights were found",
                fix="set weights.paths.vgg19 (see docs/weights.md) or choose svg_loss l1 or l2",
            )
        super().__init__(method, model_cfg, geometry, train, losses, runtime)
        self.svg_perceptual = None
        if self.svg_loss == "vgg":
            self.svg_perceptual = self.perceptual or VGG19Perceptual(runtime.vgg19_state).to(
                self.device
            )
        self.is_fpse = isinstance(_unwrap(self.discriminator), FPSEDiscriminator)
        runtime.notes["sislab.svg_loss"] = f"{self.svg_loss} x {self.svg_loss_weight:g}"

    @staticmethod
    def needs_vgg19(model_cfg: BaseModel, losses: LossesSpec) -> bool:
        """VGG19 is needed for the perceptual loss or for ``svg_loss: vgg``."""
        uses_vgg_svg_loss = isinstance(model_cfg, ScganConfig) and model_cfg.svg_loss == "vgg"
        return losses.perceptual > 0 or uses_vgg_svg_loss

    def _build_generator(self, method: Method, model_cfg: BaseModel, geometry: DatasetGeometry):
        generator = method.build_generator(model_cfg, geometry)
        if self.svg_loss == "none" and isinstance(generator, ScganGenerator):
            generator.svg.to_rgb.requires_grad_(False)
        return generator

    def _unpack(self, output: ScganGeneratorOutput, extra: dict[str, Any]) -> torch.Tensor:
        extra["svg_image"] = output.svg_image
        return output.image

    def _feature_matching(self, pred_fake, pred_real) -> torch.Tensor:
        loss = super()._feature_matching(pred_fake, pred_real)
        if self.is_fpse:
            # The shared loss weights each feature by 1/levels (3), the code by 1/features (4).
            loss = loss * len(pred_fake) / FPSEDiscriminator.NUM_FEATURES
        return loss

    def _extra_generator_terms(self, real, extra: dict[str, Any]) -> dict[str, torch.Tensor]:
        """L_s between the SVG image and the real image (code ``W_Recon_<rw_loss>``)."""
        if self.svg_loss == "none":
            return {}
        svg_image = extra["svg_image"].float()
        if self.svg_loss == "l1":
            loss = F.l1_loss(svg_image, real.float())
        elif self.svg_loss == "l2":
            loss = F.mse_loss(svg_image, real.float())
        else:
            loss = self.svg_perceptual(svg_image, real.float())
        return {"g_svg": loss * self.svg_loss_weight}
