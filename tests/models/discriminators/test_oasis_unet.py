import torch

from sislab.models.discriminators.oasis_unet import OasisUnetDiscriminator
from sislab.models.generators.oasis import OasisGenerator


def test_oasis_d_outputs_n_plus_one_channels_at_input_resolution():
    d = OasisUnetDiscriminator(num_classes=5, use_spectral_norm=False)
    assert d(torch.randn(2, 3, 64, 64)).shape == (2, 6, 64, 64)


def test_oasis_g_3d_noise_changes_output_and_fixed_z_does_not():
    g = OasisGenerator(4, 64, 64, ngf=2, z_dim=4, spade_hidden=4, use_spectral_norm=False).eval()
    sem = torch.nn.functional.one_hot(torch.randint(0, 4, (1, 64, 64)), 4).permute(0, 3, 1, 2)
    sem = sem.float()
    assert g(sem).shape == (1, 3, 64, 64)
    z = torch.randn(1, 4)
    assert torch.equal(g(sem, z), g(sem, z))
    assert not torch.equal(g(sem), g(sem))
