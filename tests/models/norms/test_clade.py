import torch
import torch.nn.functional as F

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


def test_the_fused_slope_equals_a_leaky_relu_after_the_edge_concat():
    """With instance edges the block's leaky ReLU reaches the edge channel too, bit for bit."""
    classes = torch.randint(0, 3, (2, 8, 8))
    seg = torch.cat([_onehot(classes, 3), torch.rand(2, 1, 8, 8)], 1)
    results = []
    for slope in (0.2, None):
        torch.manual_seed(0)
        norm = CLADE(4, 3, use_instance=True)
        with torch.no_grad():
            norm.inst_conv.weight.fill_(-1.0)  # a negative edge feature: the slope shows there
        x = torch.randn(2, 4, 8, 8, requires_grad=True)
        out = norm(x, seg, negative_slope=slope) if slope else F.leaky_relu(norm(x, seg), 0.2)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = [x.grad] + [p.grad for p in norm.parameters()]
        results.append((out, grads))
    (fused, fused_grads), (plain, plain_grads) = results
    assert torch.equal(fused, plain)
    assert all(torch.equal(a, b) for a, b in zip(fused_grads, plain_grads, strict=True))
