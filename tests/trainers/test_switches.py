"""Speed changes and switches keep the maths: old vs new path on one fixed batch and seed.

Each test runs a training step (or an optimiser / EMA update) both ways and compares the losses
and every weight afterwards within float tolerance. The old paths are kept here as references,
not in the package.
"""

from __future__ import annotations

import copy
import types
from typing import Any

import pytest
import torch
from torch import nn

from sislab.huge_pages import huge_pages_note
from sislab.models.convs import unfolded_conv
from sislab.models.convs.grouped_spectral_norm import GroupedSpectralNorm
from sislab.models.convs.scc import SemanticConditionalConv2d
from sislab.models.convs.spectral_norm import SpectralNorm, SpectralNormConv2d
from sislab.models.convs.unfolded_conv import unfolded_conv2d, use_unfolded_convs
from sislab.models.discriminators.multiscale import MultiscaleDiscriminator
from sislab.models.geometry import DatasetGeometry
from sislab.models.losses.perceptual import vgg19_features
from sislab.models.norms import modulation
from sislab.models.registry import get_method
from sislab.spec.models import LossesSpec, TrainSpec
from sislab.trainers.bench import synthetic_batch
from sislab.trainers.build import PROCEDURES
from sislab.trainers.procedures.base import ProcedureRuntime
from sislab.trainers.procedures.oasis import update_ema
from sislab.trainers.procedures.schedule import adam
from sislab.trainers.procedures.spade import SpadeProcedure, _split, _unwrap
from sislab.trainers.procedures.switches import prepare_module, to_channels_last

# 64x64 is the smallest size SC-GAN's FPSE (1/32 level) can normalise; 4 classes, thin widths.
GEOMETRY = DatasetGeometry(4, False, 64, 64)
TINY: dict[str, dict[str, Any]] = {
    "spade": {"ngf": 4, "ndf": 4, "num_d": 2, "n_layers_d": 2, "spade_hidden": 8},
    "spade-vae": {"ngf": 4, "ndf": 4, "num_d": 1, "n_layers_d": 2, "spade_hidden": 8,
                  "use_vae": True, "z_dim": 8},
    "scgan": {"ngf": 2, "nff": 2, "nrf": 2, "ndf": 4},
    "groupdnet": {"ngf": 4, "encoder_ndf": 4, "ndf": 4, "num_d": 1, "n_layers_d": 2,
                  "num_upsampling_layers": "normal", "cg_mlp_style": "cityscapes"},
    "oasis": {"ngf": 4, "ndf": 4, "spade_hidden": 8, "z_dim": 4},
    "clade": {"ngf": 4, "ndf": 4, "num_d": 1, "n_layers_d": 2},
}  # fmt: skip
# MulNet's generator ends with fusion layers (convs and leaky ReLUs) before the last activation.
TINY["groupdnet-mulnet"] = {**TINY["groupdnet"], "variant": "mulnet"}
TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convs gain nothing from threads, and on a shared CPU they cost 10-50x in contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ConcatCritic(SpadeProcedure):
    """The previous G step: fake and real through D as one batch, autograd over both halves."""

    def _critic_outputs(self, semantics, fake, real):
        critic = _unwrap(self.discriminator)
        critic.requires_grad_(False)
        try:
            outputs = critic(torch.cat([semantics, semantics]), torch.cat([fake, real]))
        finally:
            critic.requires_grad_(True)
        return _split(outputs, fake.shape[0])


def _procedure(case: str, cls: type | None = None, vgg: bool = False, **train: Any):
    method_name = case.split("-")[0]
    method = get_method(method_name)
    vgg_state = None
    if vgg:
        torch.manual_seed(0)  # the same random VGG19 for both paths
        vgg_state = {f"features.{k}": v for k, v in vgg19_features().state_dict().items()}
    runtime = ProcedureRuntime(torch.device("cpu"), 1, lambda m: m, vgg_state)
    procedure_cls = PROCEDURES[method.procedure]
    if cls is not None:
        procedure_cls = type(f"Reference{procedure_cls.__name__}", (cls, procedure_cls), {})
    torch.manual_seed(0)
    return procedure_cls(
        method,
        method.config(**TINY[case]),
        GEOMETRY,
        TrainSpec(batch_size=2, **train),
        LossesSpec(perceptual=10.0 if vgg else 0.0),
        runtime,
    )


def _networks(procedure) -> dict[str, nn.Module]:
    nets = {"g": _unwrap(procedure.generator), "d": _unwrap(procedure.discriminator)}
    if getattr(procedure, "encoder", None) is not None:
        nets["e"] = _unwrap(procedure.encoder)
    return nets


def _record_gradients(procedure) -> dict[int, torch.Tensor]:
    """The gradient each parameter had at its first optimiser step, keyed by ``id(param)``."""
    seen: dict[int, torch.Tensor] = {}

    def hook(optimizer, args, kwargs) -> None:
        del args, kwargs
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None and id(p) not in seen:
                    seen[id(p)] = p.grad.clone()

    procedure.opt_g.register_step_pre_hook(hook)
    procedure.opt_d.register_step_pre_hook(hook)
    return seen


def _assert_bit_identical(new, old, grads_new, grads_old) -> None:
    """Every recorded gradient and every weight and buffer of ``new`` equals ``old``'s exactly."""
    for name, net in _networks(new).items():
        old_params = dict(_networks(old)[name].named_parameters())
        for key, value in net.named_parameters():
            if id(value) in grads_new:
                assert torch.equal(grads_new[id(value)], grads_old[id(old_params[key])]), key
        old_state = _networks(old)[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(value, old_state[key]), (name, key)


def _assert_same_step(new, old, steps: int = 2, gradients: bool = True) -> None:
    """``steps`` train steps on one batch from one seed give equal losses, gradients, weights.

    Adam's first update is ``-lr * g / (|g| + eps)``, i.e. ``+-lr`` for almost every element: a
    parameter whose gradient is zero in exact arithmetic (a bias in front of a batch norm, a 2x2
    instance-normalised level) moves by ``+-lr`` on float noise, whichever path computed it, and
    later steps amplify that (the D step already reads the fake of the updated G). So the first
    G step's gradients are compared at float tolerance (relative to the largest), G's weights
    after it are equal except where that gradient is itself zero within that tolerance, D's are
    within Adam's ``2 lr`` of each other, and the losses of every step (the second reads the
    updated weights) are compared tightly. ``gradients=False`` keeps the losses and the ``2 lr``
    bound only (with ``steps=1``: SC-GAN's second-step loss already drifts 1e-4): NHWC sums in another order, and some of the tiny test nets' gradients are
    ill-conditioned enough (1e-4 of their scale) for that to show; their losses still agree.
    """
    batch = synthetic_batch(GEOMETRY, 2, torch.device("cpu"))
    grads_new, grads_old = _record_gradients(new), _record_gradients(old)
    for step in range(steps):
        torch.manual_seed(10 + step)  # noise, VAE sampling, LabelMix masks
        losses_new = new.train_step(batch)
        torch.manual_seed(10 + step)
        losses_old = old.train_step(batch)
        assert losses_new.keys() == losses_old.keys()
        for key in losses_old:
            torch.testing.assert_close(losses_new[key], losses_old[key], **TOLERANCE, msg=key)
        if step > 0:
            continue
        scale = max(g.abs().max().item() for g in grads_old.values())
        lr = max(new.opt_g.param_groups[0]["lr"], new.opt_d.param_groups[0]["lr"])
        for name, net in _networks(old).items():
            new_params = dict(_networks(new)[name].named_parameters())
            for key, value in net.named_parameters():
                if id(value) not in grads_old:
                    continue  # frozen
                gap = (new_params[key] - value).abs()
                assert gap.max() <= 2 * lr * 1.01, f"{name}.{key} moved apart"
                if name == "d" or not gradients:
                    continue  # D's step reads the fake of the updated G: flips propagate
                grad_new, grad_old = grads_new[id(new_params[key])], grads_old[id(value)]
                where = f"{name}.{key}"
                torch.testing.assert_close(grad_new, grad_old, atol=1e-5 * scale, rtol=1e-3,
                                           msg=lambda m, w=where: f"{w}: {m}")  # fmt: skip
                apart = gap > 1e-6
                assert (grad_old[apart].abs() <= 1e-5 * scale).all(), f"{where} moved apart"


@pytest.mark.parametrize("case", ["spade", "spade-vae", "scgan", "groupdnet"])
def test_real_half_without_autograd_equals_the_concatenated_critic(case: str) -> None:
    new = _procedure(case)
    assert new.split_critic
    _assert_same_step(new, _procedure(case, ConcatCritic))


def test_parameter_counts_do_not_depend_on_the_switches() -> None:
    plain = _networks(_procedure("spade", channels_last=False))
    switched = _networks(_procedure("spade", channels_last=True, compile=True))
    for name, net in plain.items():
        assert sum(p.numel() for p in net.parameters()) == sum(
            p.numel() for p in switched[name].parameters()
        )


@pytest.mark.parametrize("case", ["spade", "scgan", "oasis", "groupdnet"])
def test_channels_last_trains_the_same_weights(case: str) -> None:
    """The default layout (NHWC) against torch's NCHW: its spectral norms read the kernels in
    their memory order, its instance norms run as group norms (SC-GAN's and GroupDNet's
    generators and encoders, every multiscale and FPSE discriminator)."""
    new = _procedure(case)
    conv = next(m for m in _networks(new)["d"].modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    _assert_same_step(new, _procedure(case, channels_last=False), steps=1, gradients=False)


@pytest.mark.parametrize("case", ["spade", "oasis", "groupdnet"])
def test_unfolded_convs_train_as_torchs_convs(case: str, monkeypatch) -> None:
    """Every stride-1 ungrouped conv of the tiny nets as a product of unfolded patches (the
    limits at zero: the shipped ones pick only kernels of 4M weights and more) against torch's
    convolutions: the same losses, first gradients and weights (as channels-last's, one step:
    the tiny nets' second steps amplify the sums' other order through Adam's +-lr)."""
    new, old = _procedure(case, unfolded_convs=False), _procedure(case, unfolded_convs=False)
    calls = {"switched": 0, "unfolded": 0}

    def counted(key: str, fn):
        def wrapper(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(unfolded_conv, "unfolded_conv2d", counted("unfolded", unfolded_conv2d))
    for net in _networks(new).values():
        use_unfolded_convs(net, min_weights=0, weights_per_position=0)
        for conv in net.modules():
            if "_conv_forward" in vars(conv):
                conv._conv_forward = counted("switched", conv._conv_forward)
    _assert_same_step(new, old, steps=1)
    assert calls["switched"] > 0 and calls["unfolded"] == calls["switched"], calls


def test_channels_last_with_the_perceptual_loss() -> None:
    _assert_same_step(
        _procedure("spade", vgg=True),
        _procedure("spade", vgg=True, channels_last=False),
        steps=1,
        gradients=False,
    )


def test_to_channels_last_stores_5d_candidate_kernels_as_channels_last_stacks() -> None:
    stacks = [
        p for p in _networks(_procedure("scgan", channels_last=True))["g"].parameters()
        if p.dim() == 5
    ]  # fmt: skip
    assert stacks  # SCC's stacked candidates exist
    for stack in stacks:
        kernel = stack.reshape(-1, *stack.shape[2:])
        assert kernel.data_ptr() == stack.data_ptr()  # a view, not a copy
        assert kernel.is_contiguous(memory_format=torch.channels_last)


def test_fused_adam_equals_the_for_loop() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 2, 1))
    reference = copy.deepcopy(net)
    new_opt = adam(net.parameters(), 2e-4, (0.0, 0.999))
    assert new_opt.defaults["fused"] is True  # CPU too: torch's vectorised kernel
    old_opt = torch.optim.Adam(reference.parameters(), lr=2e-4, betas=(0.0, 0.999), foreach=False)
    for step in range(5):
        x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(step))
        for model, opt in ((net, new_opt), (reference, old_opt)):
            opt.zero_grad(set_to_none=True)
            model(x).square().mean().backward()
            opt.step()
    for new, old in zip(net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(new, old, atol=1e-7, rtol=1e-6)


def test_foreach_ema_equals_the_per_tensor_update() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model(torch.randn(2, 3, 5, 5))  # running stats and num_batches_tracked move
    ema = copy.deepcopy(model)
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model(torch.randn(2, 3, 5, 5))
    update_ema(ema, model, 0.999)
    source = model.state_dict()
    for key, value in reference.state_dict().items():  # OASIS update_EMA, tensor by tensor
        if value.is_floating_point():
            value.mul_(0.999).add_(source[key], alpha=1 - 0.999)
        else:
            value.copy_(source[key])
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ema.state_dict()[key], value, atol=0, rtol=0, msg=key)


def test_compiled_discriminator_equals_eager() -> None:
    torch.manual_seed(0)
    eager = MultiscaleDiscriminator(4, ndf=4, num_d=1, n_layers=1)
    compiled = prepare_module(copy.deepcopy(eager), TrainSpec(compile=True, channels_last=True))
    assert compiled._compiled_call_impl is not None  # in place: state-dict keys unchanged
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    semantics = torch.rand(1, 4, 16, 16)
    image = torch.rand(1, 3, 16, 16)
    outputs = [net(semantics, image) for net in (compiled, eager)]
    torch.testing.assert_close(outputs[0], outputs[1], **TOLERANCE)
    for out in outputs:
        out[0][-1].mean().backward()
    for new, old in zip(compiled.parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(new.grad, old.grad, **TOLERANCE)


def test_compile_switch_compiles_generator_and_discriminator_in_place() -> None:
    procedure = _procedure("spade", compile=True)
    assert _unwrap(procedure.generator)._compiled_call_impl is not None
    assert _unwrap(procedure.discriminator)._compiled_call_impl is not None
    eager = _procedure("spade")
    assert procedure.state_dict()["generator"].keys() == eager.state_dict()["generator"].keys()


def test_compile_switch_compiles_the_oasis_discriminator_and_leaves_the_ema_eager() -> None:
    procedure = _procedure("oasis", compile=True)
    assert _unwrap(procedure.generator)._compiled_call_impl is not None
    # Called three times before one backward: compiled with the power iterations outside.
    assert _unwrap(procedure.discriminator)._compiled_call_impl is not None
    assert _unwrap(procedure.discriminator)._forward_pre_hooks
    assert procedure.ema._compiled_call_impl is None  # only sampled: stays eager
    eager = _procedure("oasis")
    assert procedure.state_dict()["generator"].keys() == eager.state_dict()["generator"].keys()


def test_to_channels_last_converts_parametrised_weights() -> None:
    torch.manual_seed(0)
    net = MultiscaleDiscriminator(4, ndf=4, num_d=1, n_layers=2)
    to_channels_last(net)
    four_d = [p for p in net.parameters() if p.dim() == 4]
    assert four_d and all(p.is_contiguous(memory_format=torch.channels_last) for p in four_d)


def test_switches_are_recorded_as_a_tag() -> None:
    method = get_method("spade")
    runtime = ProcedureRuntime(torch.device("cpu"), 1, lambda m: m, None)
    train = TrainSpec(batch_size=1, precision="bf16", channels_last=True)
    PROCEDURES["spade"](method, method.config(**TINY["spade"]), GEOMETRY, train,
                        LossesSpec(perceptual=0.0), runtime)  # fmt: skip
    switches = runtime.notes["sislab.speed_switches"]
    assert switches.startswith(
        "precision=bf16 channels_last=True unfolded_convs=True compile=False "
    )
    # Host memory as resolved in this process (auto: kept only without huge pages).
    note = huge_pages_note()
    assert switches.endswith(
        f" host_allocator=glibc reuse_host_memory={note != 'on'} huge_pages={note}"
    )


@pytest.mark.parametrize("case", ["spade", "oasis"])
def test_each_sides_gradients_are_freed_after_its_step(case: str) -> None:
    procedure = _procedure(case)
    held_at_d_step = []

    def hook(optimizer, args, kwargs) -> None:
        del optimizer, args, kwargs
        held_at_d_step.extend(
            p for p in _unwrap(procedure.generator).parameters() if p.grad is not None
        )

    procedure.opt_d.register_step_pre_hook(hook)
    procedure.train_step(synthetic_batch(GEOMETRY, 2, torch.device("cpu")))
    assert not held_at_d_step  # G's gradients do not live through the D step
    for name, net in _networks(procedure).items():
        assert all(p.grad is None for p in net.parameters()), name


def _scc_dividing_kernels(scc: SemanticConditionalConv2d, x, vectors):
    """SCC's previous forward: the candidate kernels divided by their sigmas, then mixed."""
    return torch.einsum("bnchw,bnhw->bchw", scc.candidate_outputs(x), vectors)


def _divide_weights(procedure) -> None:
    """The previous path: every spectral norm divides its weight (torch's parametrization)."""
    for net in _networks(procedure).values():
        for module in net.modules():
            if isinstance(module, SpectralNormConv2d):
                module.forward = types.MethodType(nn.Conv2d.forward, module)
            elif isinstance(module, SemanticConditionalConv2d):
                module.forward = types.MethodType(_scc_dividing_kernels, module)


@pytest.mark.parametrize("case", ["spade-vae", "scgan", "groupdnet", "oasis"])
def test_dividing_outputs_by_sigma_trains_as_dividing_weights(case: str) -> None:
    new, old = _procedure(case), _procedure(case)
    _divide_weights(old)
    sigmas_alone = []
    for net in _networks(new).values():
        for module in net.modules():
            if isinstance(module, SpectralNorm | GroupedSpectralNorm):
                module.register_forward_hook(
                    lambda norm, args, out: sigmas_alone.append(isinstance(out, tuple))
                )
    # SC-GAN's tiny nets (init gain 0.02): Adam's +-lr on float32 noise moves their second-step
    # losses by 2e-3 either way (in float64 both paths agree to 1e-14 over two steps).
    _assert_same_step(new, old, steps=1 if case == "scgan" else 2)
    assert any(sigmas_alone) and not all(sigmas_alone)  # both paths ran in the new procedure


@pytest.mark.parametrize("case", ["spade", "clade", "scgan", "groupdnet", "oasis"])
def test_fused_modulation_trains_as_autograds_chain(case: str) -> None:
    """Two training steps with the norms' fused modulation + leaky ReLU and with autograd's ops
    (``modulate``'s other path): the same losses, gradients and weights, bit for bit."""
    new, old = _procedure(case), _procedure(case)
    batch = synthetic_batch(GEOMETRY, 2, torch.device("cpu"))
    grads_new, grads_old = _record_gradients(new), _record_gradients(old)
    fused = modulation._ModulatedLeakyReLU.apply
    fused_calls = []

    def counting(*args):
        fused_calls.append(args[3])
        return fused(*args)

    for step in range(2):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(modulation._ModulatedLeakyReLU, "apply", counting)
            torch.manual_seed(10 + step)
            losses_new = new.train_step(batch)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(modulation, "stateless_norm", lambda norm: None)
            torch.manual_seed(10 + step)
            losses_old = old.train_step(batch)
        for key in losses_old:
            assert torch.equal(losses_new[key], losses_old[key]), (step, key)
    assert fused_calls  # the fused path ran
    _assert_bit_identical(new, old, grads_new, grads_old)


def _saved_bytes_of_a_step(procedure, batch) -> int:
    """Bytes of the distinct storages autograd saves during one train step (weights aside)."""
    weights = {
        p.untyped_storage().data_ptr()
        for net in _networks(procedure).values()
        for p in net.parameters()
    }
    # Held until the count: a freed storage's address is reused by later ones.
    saved: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in weights:
            saved[t.untyped_storage().data_ptr()] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        procedure.train_step(batch)
    return sum(t.untyped_storage().nbytes() for t in saved.values())


@pytest.mark.parametrize(
    "case", ["spade", "spade-vae", "groupdnet", "groupdnet-mulnet", "oasis", "scgan"]
)
def test_in_place_leaky_relus_train_bit_for_bit_as_out_of_place_ones(case: str) -> None:
    # The leaky ReLUs after a conv or a norm, and the generators' last one (on the last block's
    # residual sum), run in place: their input is saved by no one, so autograd keeps their
    # result (which the next conv keeps anyway) instead of the input, a second tensor.
    plain = torch.nn.functional.leaky_relu

    def out_of_place(x, negative_slope=0.01, inplace=False):
        return plain(x, negative_slope)

    # In NCHW: under channels-last an out-of-place activation of a tensor whose strides fit
    # both layouts (SC-GAN's 3-channel RGB head) returns NCHW where the in-place one keeps NHWC,
    # and the next conv rounds each layout's sums differently (1e-11 apart).
    new, old = _procedure(case, channels_last=False), _procedure(case, channels_last=False)
    batch = synthetic_batch(GEOMETRY, 2, torch.device("cpu"))
    grads_new, grads_old = _record_gradients(new), _record_gradients(old)
    torch.manual_seed(10)
    saved_new = _saved_bytes_of_a_step(new, batch)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.functional, "leaky_relu", out_of_place)
        torch.manual_seed(10)
        saved_old = _saved_bytes_of_a_step(old, batch)
    assert saved_new < saved_old
    _assert_bit_identical(new, old, grads_new, grads_old)
