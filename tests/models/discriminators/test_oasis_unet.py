import copy
import functools

import torch
import torch.nn.functional as F

from sislab.models.discriminators.oasis_unet import HalfAvgPool, OasisUnetDiscriminator, ResBlockD
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


def _step(d: OasisUnetDiscriminator, image: torch.Tensor):
    """Logits, gradients (input and parameters) and the bytes of the storages autograd keeps."""
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    image = image.clone().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logits = d(image)
    logits.square().mean().backward()
    grads = [image.grad, *(p.grad for p in d.parameters())]
    return logits.detach(), grads, sum(saved.values())


def test_in_place_activation_changes_no_value_and_keeps_less() -> None:
    torch.manual_seed(0)
    d = OasisUnetDiscriminator(num_classes=4, ndf=16)  # spectral norm on, as trained
    autograd_chain = copy.deepcopy(d)
    for module in autograd_chain.modules():
        if isinstance(module, torch.nn.LeakyReLU):
            module.inplace = False  # the official residual_block_D's activations
    image = torch.randn(2, 3, 64, 128)
    logits, grads, kept = _step(d, image)
    ref_logits, ref_grads, ref_kept = _step(autograd_chain, image)
    assert torch.equal(logits, ref_logits)
    for grad, ref in zip(grads, ref_grads, strict=True):
        assert torch.equal(grad, ref)
    for buffer, ref in zip(d.buffers(), autograd_chain.buffers(), strict=True):
        assert torch.equal(buffer, ref)  # the spectral norms' power iterations
    # conv2's activation is kept once instead of as the conv's output and its own input.
    assert kept < 0.9 * ref_kept, (kept, ref_kept)


def _oasis_order_shortcut(block: ResBlockD, first: bool, x: torch.Tensor) -> torch.Tensor:
    """OASIS residual_block_D's shortcut: upsample before the 1x1 conv, pool after it (the
    first block before)."""
    if block.direction > 0 or first:
        x = block.sampling(x)
    if block.learned_shortcut:
        x = block.conv_s(x)
    return x if block.direction > 0 or first else block.sampling(x)


def test_half_avg_pool_is_avg_pool2d_and_keeps_nothing() -> None:
    x = torch.randn(2, 3, 8, 12, requires_grad=True)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        pooled = HalfAvgPool()(x)
    assert kept == []  # nn.AvgPool2d's node keeps x
    reference = F.avg_pool2d(x, 2)
    assert torch.equal(pooled, reference)
    upstream = torch.randn_like(pooled)
    (grad,) = torch.autograd.grad(pooled, x, upstream)
    (ref_grad,) = torch.autograd.grad(reference, x, upstream)
    assert torch.equal(grad, ref_grad)


def test_shortcut_at_low_resolution_equals_oasis_order_and_keeps_less() -> None:
    torch.manual_seed(0)
    d = OasisUnetDiscriminator(num_classes=4, ndf=16).double()  # exact maths: float64
    oasis_order = copy.deepcopy(d)
    for block in oasis_order.modules():
        if isinstance(block, ResBlockD):
            first = block is oasis_order.body_down[0]
            block.shortcut = functools.partial(_oasis_order_shortcut, block, first)
            if block.direction < 0:
                block.sampling = torch.nn.AvgPool2d(2)  # OASIS's, keeping its input
    image = torch.randn(2, 3, 64, 128, dtype=torch.float64)
    logits, grads, kept = _step(d, image)
    ref_logits, ref_grads, ref_kept = _step(oasis_order, image)
    # The same dot products per pixel; the 1x1 conv's weight gradient sums each 2x2 block's
    # gradients before the product instead of after: rounding only (1e-16 here, 1e-7 in
    # float32). The in-place activation and the pooling are bit-identical (tests above).
    torch.testing.assert_close(logits, ref_logits, rtol=1e-12, atol=1e-14)
    for grad, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref, rtol=1e-10, atol=1e-14)
    assert kept < 0.75 * ref_kept, (kept, ref_kept)
