"""Weight-name map: official GroupDNet (Seanseattle/SMIS ``--model smis``) -> sislab ``groupdnet``.

Ours (names only, no official code). sislab's GroupDGenerator keeps the official block names
(fc, head_0, G_middle_0/1, up_0..up_3, norm_*/mlp_*, conv_img), so only the spectral-norm
names change; the encoder's ``layerK`` become ``layers.K-1``; the discriminator is SPADE's.
"""

from __future__ import annotations

from maps.scgan import _sn
from maps.scgan import encoder as _layer_encoder
from maps.scgan import multiscale_discriminator  # noqa: F401  (SPADE's D, as SC-GAN's CelebA)


def generator(key: str) -> tuple[str, int | None]:
    """Official ``DeepFashionGenerator`` key -> sislab ``GroupDGenerator`` key."""
    return _sn(key), None


def encoder(key: str) -> tuple[str, int | None]:
    """Official SMIS ``ConvEncoder`` key -> sislab ``GroupEncoder`` key (same names as SPADE's)."""
    return _layer_encoder(key)
