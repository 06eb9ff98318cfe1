"""The SMIS property of GroupDNet: resampling class c's latent moves pixels (almost) only inside
class c's mask.

The property is learned, not wired in: CG-Norm modulates group c's channels over the whole image
(``x * (1 + gamma(M_c)) + beta(M_c)`` is not zero outside M_c) and the latent is a 2x2 map that
covers every class, so an untrained decoder spreads class c's latent everywhere. Training as a
VAE teaches the decoder to ignore z_c outside M_c: the group encoder makes z_c a function of
class c's pixels only, and with each class styled independently, any trace of z_c elsewhere is
noise the reconstruction pays for.

Leakage radius: the last CG-Norms (up_3, at output resolution) are the last place the mask can
gate, and their gamma/beta come from two 3x3 convs over the mask, so a pixel up to 2 px outside
the mask can still be modulated as if inside; after the last gate come conv_1 and conv_img (3x3
each: 2 px more; the shortcut, conv_s 1x1 then conv_img, 1 px). Class c's mask is therefore
dilated by 4 px before the outside is measured. On the trained model below the outside/inside
ratio is 0.056, 0.040, 0.035, 0.034 at r = 0, 2, 4, 8: past 4 px what is left is a small diffuse
leak, not a boundary effect.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sislab.datasets.synthetic import render_sample
from sislab.models.encoders.conv import reparameterize
from sislab.models.geometry import DatasetGeometry
from sislab.models.losses.kl import kl_divergence
from sislab.models.methods.groupdnet import GroupDNetConfig, build_encoder, build_generator

CLASSES, SIZE = 4, 64
# 64 px is the smallest size with a 2x2 latent grid ('normal'); at 1x1 the encoder's last
# InstanceNorm would normalise a single value. G stays = classes until up_0, then halves twice,
# as Table 4's schedules do; with [4, 4, 2, 2, 1, 1, 1] the 4-8 channel output stages are left
# to unmix the classes, and 600 steps were not enough on every seed tried.
CONFIG = {
    "ngf": 4,
    "encoder_ndf": 16,
    "decoder_groups": [4, 4, 4, 4, 2, 2, 1],
    "num_upsampling_layers": "normal",
    "cg_mlp_style": "cityscapes",
}
# Two styles per class (its colour or the negated colour), drawn independently per class and image:
# the smallest multi-modal data. A sign survives the encoder's InstanceNorms; a colour's magnitude
# on a flat region does not (they remove per-channel scale).
BASE = torch.tensor([[1.0, 0.2, -0.6], [-0.3, 1.0, 0.4], [0.5, -0.5, 1.0], [0.8, 0.8, 0.2]]) * 0.8
RADIUS = 4
STEPS = 400


def _build(seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    geometry = DatasetGeometry(CLASSES, False, SIZE, SIZE)
    cfg = GroupDNetConfig(**CONFIG)
    torch.manual_seed(seed)
    return build_generator(cfg, geometry), build_encoder(cfg, geometry)


def _onehot(label: torch.Tensor) -> torch.Tensor:
    return torch.zeros(label.shape[0], CLASSES, SIZE, SIZE).scatter_(1, label, 1.0)


def _paint(label: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Flat image of ``label`` (N, 1, H, W): class c in ``styles[:, c] * BASE[c]`` (styles ±1)."""
    colours = styles[..., None] * BASE  # (N, C, 3)
    index = label.flatten(1)[..., None].expand(-1, -1, 3)
    return colours.gather(1, index).reshape(label.shape[0], SIZE, SIZE, 3).permute(0, 3, 1, 2)


def _styles(n: int, rng: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n, CLASSES), generator=rng).float() * 2 - 1


def _probe_layout() -> torch.Tensor:
    """Every class, with a hole and a two-part mask: quadrants 0-3 and a disc of 3 inside 0."""
    label = torch.zeros(1, 1, SIZE, SIZE, dtype=torch.long)
    half = SIZE // 2
    label[..., :half, half:] = 1
    label[..., half:, :half] = 2
    label[..., half:, half:] = 3
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    label[0, 0][(yy - SIZE // 4) ** 2 + (xx - SIZE // 4) ** 2 < (SIZE // 8) ** 2] = 3
    return label


@torch.no_grad()
def _restyle_change(generator, encoder, draw: str, radius: int = RADIUS) -> tuple[float, float]:
    """Mean |Δ| per pixel inside class c's mask and outside its ``radius``-dilation.

    Every class latent is encoded from an image of the probe layout; then only z_c is redrawn,
    from the posterior of the same image with class c in its other style (``posterior``: the
    appearance transfer of P-GDN Sec. 4.4.3) or from the prior (``prior``: the test-time
    multi-modal synthesis). Sums over the four classes and four random stylings.
    """
    generator.eval()
    encoder.eval()
    label = _probe_layout()
    semantics = _onehot(label)
    rng = torch.Generator().manual_seed(1)
    inside = outside = 0.0
    for _ in range(4):
        styles = _styles(1, rng)
        mu, _ = encoder(_paint(label, styles), semantics)
        base = generator(semantics, mu)
        for c in range(CLASSES):
            z = mu.clone()
            if draw == "prior":
                z[:, c] = torch.randn(z[:, c].shape, generator=rng)
            else:
                flipped = styles.clone()
                flipped[:, c] *= -1
                mu_c, logvar_c = encoder(_paint(label, flipped), semantics)
                eps = torch.randn(mu_c[:, c].shape, generator=rng)
                z[:, c] = mu_c[:, c] + eps * torch.exp(0.5 * logvar_c[:, c])
            delta = (generator(semantics, z) - base).abs().mean(1)[0]
            mask = label == c
            far = ~(F.max_pool2d(mask.float(), 2 * radius + 1, 1, radius) > 0)
            inside += delta[mask[0, 0]].mean().item()
            outside += delta[far[0, 0]].mean().item()
    n = 4 * CLASSES
    return inside / n, outside / n


def _train(generator, encoder, steps: int, seed: int) -> None:
    """VAE training: L1 reconstruction + a weak KL, on fresh stylings of 128 synthetic layouts.

    L1 stands in for the paper's VGG and feature-matching terms (no VGG weights in tests; the
    adversarial terms are left out for time). A KL of 0.05 per image element keeps the
    posteriors informative within a few hundred steps.
    """
    labels = torch.stack(
        [
            torch.from_numpy(render_sample(i, num_classes=CLASSES, size=SIZE, seed=0)[1])
            for i in range(128)
        ]
    )[:, None].long()
    params = [*generator.parameters(), *encoder.parameters()]
    opt = torch.optim.Adam(params, lr=5e-3, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps)
    rng = torch.Generator().manual_seed(seed)
    generator.train()
    encoder.train()
    for _ in range(steps):
        label = labels[torch.randperm(len(labels), generator=rng)[:8]]
        image, semantics = _paint(label, _styles(8, rng)), _onehot(label)
        mu, logvar = encoder(image, semantics)
        fake = generator(semantics, reparameterize(mu, logvar))
        loss = (fake - image).abs().mean() + 0.05 * kl_divergence(mu, logvar) / image.numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def test_untrained_decoder_spreads_a_class_latent_over_the_whole_image() -> None:
    generator, encoder = _build(0)
    for draw in ("posterior", "prior"):
        inside, outside = _restyle_change(generator, encoder, draw)
        assert outside > 0.5 * inside > 0


@pytest.mark.slow
def test_trained_resampling_changes_pixels_almost_only_inside_the_class_mask() -> None:
    generator, encoder = _build(0)
    _train(generator, encoder, STEPS, seed=0)
    # Seed 0 gives ratios 0.035 (posterior) and 0.043 (prior); seeds 0-5 stayed under 0.061 and
    # 0.095, untrained ones sit at 0.9-1.1.
    inside, outside = _restyle_change(generator, encoder, "posterior")
    assert inside > 0.3  # a restyle flips the colour, 1.0 on average per channel
    assert outside < 0.1 * inside
    inside, outside = _restyle_change(generator, encoder, "prior")
    assert inside > 0.1
    assert outside < 0.2 * inside
