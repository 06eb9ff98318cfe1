import torch

from sislab.models.geometry import DatasetGeometry
from sislab.models.methods.spade import (
    SpadeConfig,
    build_discriminator,
    build_encoder,
    build_generator,
)

GEOMETRY = DatasetGeometry(num_classes=5, use_instance=True, height=64, width=64)


def test_builders_run_end_to_end():
    cfg = SpadeConfig(ngf=4, ndf=4, spade_hidden=4)
    g, d = build_generator(cfg, GEOMETRY), build_discriminator(cfg, GEOMETRY)
    semantics = torch.rand(2, GEOMETRY.semantic_nc, 64, 64)
    fake = g(semantics)
    assert fake.shape == (2, 3, 64, 64)
    out = d(semantics, fake)
    assert len(out) == cfg.num_d and len(out[0]) == cfg.n_layers_d + 1
    assert build_encoder(cfg, GEOMETRY) is None


def test_vae_encoder_and_generator_agree_on_z_dim():
    cfg = SpadeConfig(ngf=4, ndf=4, spade_hidden=4, use_vae=True, z_dim=12)
    encoder = build_encoder(cfg, GEOMETRY)
    mu, _ = encoder(torch.rand(1, 3, 64, 64))
    g = build_generator(cfg, GEOMETRY)
    assert g(torch.rand(1, GEOMETRY.semantic_nc, 64, 64), mu).shape == (1, 3, 64, 64)


def test_config_upsampling_overrides_dataset_default():
    cfg = SpadeConfig(ngf=4, spade_hidden=4, num_upsampling_layers="more")
    assert build_generator(cfg, GEOMETRY).sh == 1
    assert build_generator(SpadeConfig(ngf=4, spade_hidden=4), GEOMETRY).sh == 2


def test_init_is_spade_xavier():
    g = build_generator(SpadeConfig(ngf=4, spade_hidden=4), GEOMETRY)
    assert torch.all(g.conv_img.bias == 0)
    assert g.conv_img.weight.std() < 0.01  # xavier gain 0.02, not torch's default init
