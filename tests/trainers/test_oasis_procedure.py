"""OASIS's D step calls D once per image kind, as boschresearch/OASIS ``models.py`` does.

Each training-mode call of a spectrally normalised D advances its power iteration, so three calls
(fake, real, LabelMix image) differ from one concatenated call; the lock-step check against the
official code found this (tools/lockstep, docs/methods.md).
"""

from __future__ import annotations

import torch

from sislab.spec.loader import spec_from_dict
from sislab.trainers import build

SIZE = 64


def _procedure(labelmix_weight: float):
    spec = spec_from_dict(
        {
            "name": "oasis-d-calls",
            "method": "oasis",
            "dataset": {
                "uri": f"synthetic://shapes?size={SIZE}&classes=4&num=4&val=2",
                "image_size": [SIZE, SIZE],
            },
            "model": {
                "ngf": 4,
                "ndf": 8,
                "z_dim": 4,
                "spade_hidden": 8,
                "labelmix_weight": labelmix_weight,
            },
            "train": {"epochs": 1, "batch_size": 2, "lr_decay_epochs": 0},
            "losses": {"perceptual": 0.0},
            "resources": {"num_workers": 1},
        }
    )
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, torch.device("cpu"), 1, lambda m: m)
    return procedure


def _batch() -> dict[str, torch.Tensor]:
    label = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.long)
    label[:, :, SIZE // 2 :] = 1
    label[:, :, :, SIZE // 2 :] += 2
    return {"image": torch.rand(2, 3, SIZE, SIZE) * 2 - 1, "label": label}


def _d_inputs(procedure, batch) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    hook = procedure.discriminator.register_forward_hook(
        lambda module, args, out: seen.append(args[0].detach().clone())
    )
    try:
        procedure.discriminator_losses(batch, procedure._semantics(batch))
    finally:
        hook.remove()
    return seen


def test_d_step_calls_d_on_fake_then_real_then_labelmix_image():
    procedure, batch = _procedure(10.0), _batch()
    inputs = _d_inputs(procedure, batch)
    assert [tuple(x.shape) for x in inputs] == [(2, 3, SIZE, SIZE)] * 3
    fake, real, mixed = inputs
    assert torch.equal(real, batch["image"])
    assert not torch.equal(fake, real)
    # every pixel of the LabelMix image comes from the real or the fake image
    from_real = (mixed - real).abs().amax(dim=1) < 1e-6
    from_fake = (mixed - fake).abs().amax(dim=1) < 1e-6
    assert bool((from_real | from_fake).all())


def test_d_step_without_labelmix_calls_d_twice():
    procedure, batch = _procedure(0.0), _batch()
    inputs = _d_inputs(procedure, batch)
    assert len(inputs) == 2
    assert torch.equal(inputs[1], batch["image"])
