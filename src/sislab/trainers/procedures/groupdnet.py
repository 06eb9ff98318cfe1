"""GroupDNet's procedure: SPADE's recipe (hinge, feature matching, VGG, KL 0.05) with the group
encoder, which reads the label map as well as the image (P-GDN Eq. 6; SMIS smis_model.py)."""

from __future__ import annotations

import torch

from sislab.trainers.procedures.spade import SpadeProcedure, _unwrap


class GroupDNetProcedure(SpadeProcedure):
    """``SpadeProcedure`` whose encoder is ``encoder(image, semantics) -> (mu, logvar)`` with
    per-class latents (B, C, 8, h, w), and whose test-time z is the generator's prior."""

    def _encode(self, image, semantics) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-class ``(mu, logvar)`` from the class-split image."""
        return self.encoder(image, semantics)

    def _prior_z(self, semantics: torch.Tensor) -> torch.Tensor:
        """Per-class latents from ``N(0, I)`` in the generator's latent shape."""
        return _unwrap(self.generator).sample_latent(semantics.shape[0], semantics.device)
