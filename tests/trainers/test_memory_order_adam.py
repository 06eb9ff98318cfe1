"""Fused Adam steps channels-last parameters in place of torch's contiguous copies, same values."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.profiler import profile

from sislab.models.layout import as_channels_last
from sislab.trainers.procedures.memory_order_step import MemoryOrderAdam
from sislab.trainers.procedures.schedule import adam

SHAPES = [(16, 8, 3, 3), (3, 4, 5, 3, 3), (7,)]  # a kernel, an SC-GAN stack, a bias


def _params(channels_last: bool) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in SHAPES]
    if channels_last:
        for p in params[:2]:
            p.data = as_channels_last(p.data)
    return params


def _train(optimizer: torch.optim.Optimizer, params, steps: int, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            grad = torch.randn(p.shape, generator=generator)
            p.grad = torch.empty_like(p).copy_(grad)  # in the parameter's layout, as autograd
        optimizer.step()


def test_channels_last_steps_equal_plain_fused_adam_and_keep_torchs_order() -> None:
    plain_params, ours_params = _params(False), _params(True)
    plain = torch.optim.Adam(plain_params, lr=1e-2, betas=(0.0, 0.999), fused=True)
    ours = adam(ours_params, 1e-2, (0.0, 0.999))
    assert isinstance(ours, MemoryOrderAdam)
    _train(plain, plain_params, 3)
    _train(ours, ours_params, 3)
    for a, b in zip(plain_params, ours_params, strict=True):
        assert torch.equal(a, b)
        assert b.shape == a.shape and b.grad.shape == a.shape
    assert ours_params[0].is_contiguous(memory_format=torch.channels_last)
    state, plain_state = ours.state_dict()["state"], plain.state_dict()["state"]
    for index, p in enumerate(ours_params):
        for key in ("exp_avg", "exp_avg_sq"):
            assert state[index][key].shape == p.shape
            assert state[index][key].stride() == p.stride()  # stored as its parameter
            assert torch.equal(state[index][key], plain_state[index][key])


@pytest.mark.parametrize("saved_channels_last", [False, True], ids=["nchw-state", "nhwc-state"])
def test_a_state_saved_in_the_other_layout_loads_and_steps_the_same(saved_channels_last) -> None:
    # torch's own fused Adam steps misaligned elements here (an NCHW run's checkpoint resumed
    # channels-last, or the reverse): the parameters end ~1e-2 from the right ones.
    reference_params, saved_params = _params(False), _params(saved_channels_last)
    reference = torch.optim.Adam(reference_params, lr=1e-2, betas=(0.0, 0.999), fused=True)
    saved_run = torch.optim.Adam(saved_params, lr=1e-2, betas=(0.0, 0.999), fused=True)
    _train(reference, reference_params, 2)
    _train(saved_run, saved_params, 2)
    saved = copy.deepcopy(saved_run.state_dict())
    ours_params = _params(not saved_channels_last)
    for ours_p, reference_p in zip(ours_params, reference_params, strict=True):
        ours_p.data.copy_(reference_p.data)
    ours = adam(ours_params, 1e-2, (0.0, 0.999))
    ours.load_state_dict(saved)
    _train(reference, reference_params, 2, seed=2)
    _train(ours, ours_params, 2, seed=2)
    for a, b in zip(reference_params, ours_params, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("param_channels_last", [True, False], ids=["nhwc-param", "nchw-param"])
def test_a_gradient_in_another_layout_than_its_parameter_steps_the_same(param_channels_last):
    shapes = [*SHAPES, (12, 1, 3, 3)]  # a depthwise kernel: NCHW and NHWC differ in strides only
    reference_params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    ours_params = [torch.nn.Parameter(p.detach().clone()) for p in reference_params]
    if param_channels_last:
        for p in ours_params[:2] + ours_params[3:]:
            p.data = as_channels_last(p.data)
    reference = torch.optim.Adam(reference_params, lr=1e-2, betas=(0.0, 0.999), fused=True)
    ours = adam(ours_params, 1e-2, (0.0, 0.999))
    for _ in range(3):
        for a, b in zip(reference_params, ours_params, strict=True):
            a.grad = torch.randn(a.shape)
            # Autograd's layout contract bypassed: the gradient in the other layout.
            b.grad = a.grad.clone() if param_channels_last else as_channels_last_or_same(a.grad)
        reference.step()
        ours.step()
    for a, b in zip(reference_params, ours_params, strict=True):
        assert torch.equal(a, b)
        assert ours.state[b]["exp_avg"].shape == b.shape


def as_channels_last_or_same(tensor: torch.Tensor) -> torch.Tensor:
    return as_channels_last(tensor) if tensor.ndim in (4, 5) else tensor.clone()


def test_hooks_see_torchs_order_and_a_refused_step_moves_nothing() -> None:
    params = _params(True)
    optimizer = adam(params, 1e-2, (0.0, 0.999))
    seen: list[tuple[torch.Size, torch.Size]] = []

    def record(opt, args, kwargs) -> None:
        seen.extend((p.shape, p.grad.shape) for p in opt.param_groups[0]["params"])

    def refuse(opt, args, kwargs) -> None:  # as sislab's non-finite check does
        for p in opt.param_groups[0]["params"]:
            p.grad = None

    handles = [optimizer.register_step_pre_hook(record), optimizer.register_step_post_hook(record)]
    _train(optimizer, params, 1)
    assert seen == [(torch.Size(s), torch.Size(s)) for s in SHAPES] * 2
    for handle in handles:
        handle.remove()
    before = [p.detach().clone() for p in params]
    optimizer.register_step_pre_hook(refuse)
    with torch.no_grad():
        for p in params:
            p.grad = torch.ones_like(p)
    optimizer.step()
    assert all(p.grad is None for p in params)
    assert all(torch.equal(a, b) for a, b in zip(before, params, strict=True))


def test_the_step_copies_no_channels_last_tensor() -> None:
    for optimizer_class, copies in ((torch.optim.Adam, True), (MemoryOrderAdam, False)):
        params = _params(True)
        optimizer = optimizer_class(params, lr=1e-2, betas=(0.0, 0.999), fused=True)
        _train(optimizer, params, 1)  # the moments exist
        with profile(record_shapes=True) as prof:
            optimizer.step()
        copied = [
            tuple(event.input_shapes[0])
            for event in prof.events()
            if event.name in ("aten::clone", "aten::copy_") and event.input_shapes[0]
        ]  # the step counts' scalar copies aside
        # torch's fused CPU kernel makes a tensor-sized copy for a channels-last parameter.
        assert bool(copied) is copies, (optimizer_class, copied)
