import torch

from sislab.models.norms.clade import CLADE, ClassAffine


def _onehot(classes: torch.Tensor, n: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(classes, n).permute(0, 3, 1, 2).float()


def test_gamma_beta_constant_inside_a_class_and_no_one_plus():
    norm = CLADE(4, 3, use_instance=False, param_free="instance")
    classes = torch.zeros(1, 8, 8, dtype=torch.long)
    classes[:, :, 4:] = 2
    with torch.no_grad():
        norm.class_specified_affine.bias.copy_(torch.arange(12.0).view(3, 4))
        norm.class_specified_affine.weight.zero_()
    out = norm(torch.randn(1, 4, 8, 8), _onehot(classes, 3))
    # weight 0 -> out = beta[class] exactly (CLADE has no "1 +").
    assert torch.allclose(out[0, :, 0, 0], torch.arange(4.0))
    assert torch.allclose(out[0, :, 7, 7], torch.arange(8.0, 12.0))


def test_instance_edges_add_one_output_channel():
    norm = CLADE(4, 3, use_instance=True)
    seg = torch.cat([_onehot(torch.zeros(2, 8, 8, dtype=torch.long), 3), torch.ones(2, 1, 8, 8)], 1)
    assert norm(torch.randn(2, 4, 8, 8), seg).shape == (2, 5, 8, 8)


def test_icpe_modulates_with_offsets():
    affine = ClassAffine(3, 4, use_offsets=True)
    with torch.no_grad():
        affine.dist_conv_w.weight.fill_(1.0)
    classes = torch.zeros(1, 4, 4, dtype=torch.long)
    offsets = torch.randn(1, 2, 4, 4)
    gamma, _ = affine(classes, offsets)
    expected = affine.weight[0].view(1, 4, 1, 1) * (1 + offsets.sum(1, keepdim=True))
    assert torch.allclose(gamma, expected)
