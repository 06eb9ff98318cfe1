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

    @torch.no_grad()
    def sample_class(
        self, batch: dict[str, torch.Tensor], class_id: int, num_samples: int
    ) -> torch.Tensor:
        """``num_samples`` images of the batch's first layout where only ``class_id``'s latent is
        redrawn (the other classes keep one draw): the samples of mCSD/mOCD (GroupDNet §4.3).

        Returns:
            (num_samples, 3, H, W) in [-1, 1].
        """
        generator = _unwrap(self.generator)
        was_training = generator.training
        generator.eval()
        try:
            semantics = self._semantics({k: v[:1] for k, v in batch.items()})
            z = generator.sample_latent(1, semantics.device).repeat(
                num_samples, *([1] * (len(generator.latent_shape)))
            )
            z[:, class_id] = torch.randn_like(z[:, class_id])
            images = self._unpack(generator(semantics.expand(num_samples, -1, -1, -1), z), {})
            return images.float().clamp(-1, 1)
        finally:
            generator.train(was_training)
