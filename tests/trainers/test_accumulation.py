"""Gradient accumulation of every training procedure: one step over k micro-batches of B equals
one step over a batch of kB.

Each procedure is built by the worker's own code (``build.build_procedure``) twice in one
process, in float64: with ``train.grad_accumulation: 2`` and, as the reference, without. Both
see the same batches and, through ``MicroBatchNoise``, the same noise sample for sample (z, the
VAE's reparameterisation, semantic noise, LabelMix bits). After each of two steps every tensor of
the procedure's state is compared: weights, spectral-norm vectors (one power iteration per
optimiser step), the OASIS EMA generator, Adam's moments. The configurations use instance or
group norms: batch-norm statistics are per micro-batch by design (docs/batch.md), so a BN model
would differ from its reference; the test asserts that no batch norm is left. The 2-rank x
accumulation case runs in test_ddp_equivalence.py's spawn (one process start for both).
"""

from __future__ import annotations

import pytest
import torch
from tests.trainers.shared_noise import MicroBatchNoise
from tests.trainers.test_groupdnet_procedure import GROUPDNET

from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.worker import make_wrap

SIZE = 64
NUM_CLASSES = 4
GLOBAL_BATCH = 4  # 1 rank x 2 micro-batches of 2 here; 2 ranks x 2 micro-batches of 1 with DDP
STEPS = 2
SEED = 5

INSTANCE = {"param_free_norm": "instance"}
CASES = {
    "spade-vae": ("spade", {"ngf": 8, "ndf": 8, "spade_hidden": 8, "use_vae": True, "z_dim": 8,
                            "num_d": 1, **INSTANCE}),
    "va-spade": ("va-spade", {"ngf": 8, "ndf": 8, "spade_hidden": 8, "position_code": "learn",
                              **INSTANCE}),
    "oasis": ("oasis", {"ngf": 8, "ndf": 8, "z_dim": 4, "spade_hidden": 8, "ema_decay": 0.9,
                        **INSTANCE}),
    "groupdnet": ("groupdnet", {**GROUPDNET, "norm": "group"}),
    "scgan": ("scgan", {"ngf": 2, "nff": 2, "nrf": 2, "ndf": 4, "num_candidates": 2, "use_vae": True,
                        "z_dim": 8, **INSTANCE}),
}  # fmt: skip


def _spec(method: str, model: dict, accumulation: int, world_size: int):
    return spec_from_dict(
        {
            "name": "accumulation",
            "method": method,
            "dataset": {
                "uri": f"synthetic://shapes?size={SIZE}&classes={NUM_CLASSES}&num=8&val=2",
                "image_size": [SIZE, SIZE],
            },
            "model": model,
            "train": {"epochs": 1, "batch_size": GLOBAL_BATCH, "seed": SEED,
                      "lr_decay_epochs": 0, "grad_accumulation": accumulation},
            "losses": {"perceptual": 0.0},
            "resources": {"num_workers": world_size},
        }
    )  # fmt: skip


def batches() -> list[dict[str, torch.Tensor]]:
    """STEPS global batches of 4x4 random class cells, every class present."""
    generator = torch.Generator().manual_seed(1)
    out = []
    for _ in range(STEPS):
        cells = torch.randint(0, NUM_CLASSES, (GLOBAL_BATCH, 1, 4, 4), generator=generator)
        cells[:, :, 0, 0] = NUM_CLASSES - 1
        label = torch.nn.functional.interpolate(cells.float(), size=(SIZE, SIZE)).long()
        image = torch.rand(GLOBAL_BATCH, 3, SIZE, SIZE, generator=generator, dtype=torch.float64)
        out.append({"image": image * 2 - 1, "label": label})
    return out


def state(procedure) -> dict[str, torch.Tensor]:
    """Every tensor of the procedure's state (networks with buffers, EMA, optimiser moments)."""
    from tests.trainers.test_ddp_equivalence import _state

    return _state(procedure)


def train(case: str, rank: int, world_size: int, accumulation: int, watch=None) -> list[dict]:
    """STEPS float64 steps of ``case`` on this rank's rows; the states after each step.

    Args:
        watch: Called with the procedure and each step's noise before the step (the DDP test
            counts all-reduces with it).
    """
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        method, model = CASES[case]
        spec = _spec(method, model, accumulation, world_size)
        geometry = build.dataset_geometry(spec)
        wrap = make_wrap(torch.device("cpu"), world_size, spec.train.sync_bn)
        procedure, _ = build.build_procedure(spec, geometry, torch.device("cpu"), world_size, wrap)
        assert procedure.accumulation == accumulation
        local = GLOBAL_BATCH // world_size
        states = []
        for step, batch in enumerate(batches()):
            mine = {k: v[rank * local : (rank + 1) * local] for k, v in batch.items()}
            noise = MicroBatchNoise(rank, world_size, accumulation, local // accumulation, step)
            noise.watch(procedure)
            if watch is not None:
                watch(procedure, noise)
            with noise:
                losses = procedure.train_step(mine)
            assert all(torch.isfinite(v) for v in losses.values()), losses
            states.append({"losses": losses, **state(procedure)})
        return states
    finally:
        torch.set_default_dtype(default)


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(
        (x.double() - y.double()).abs().max().item()
        for x, y in zip(a.values(), b.values(), strict=True)
    )


def assert_same_states(case: str, states: list[dict], reference: list[dict], label: str) -> None:
    """Every tensor allclose to the reference after every step; prints the largest gap."""
    for step, (got, ref) in enumerate(zip(states, reference, strict=True)):
        got, ref = dict(got), dict(ref)
        # The losses are means over the whole batch, as the reference's (OASIS's in float32).
        for key, value in got.pop("losses").items():
            torch.testing.assert_close(value, ref["losses"][key], rtol=1e-6, atol=1e-7)
        ref.pop("losses")
        for key, value in got.items():
            torch.testing.assert_close(
                value, ref[key], rtol=1e-7, atol=1e-9, msg=lambda m, k=key: f"{k}: {m}"
            )
        difference = max_abs_difference(got, ref)
        print(f"{case} {label}: step {step + 1}: max |w_accumulated - w_reference| = "
              f"{difference:.3g}")  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_two_micro_batches_equal_one_pass_over_the_whole_batch(case: str) -> None:
    reference = train(case, 0, 1, 1)
    accumulated = train(case, 0, 1, 2)
    assert_same_states(case, accumulated, reference, "1 rank x 2 micro-batches")
    # The steps trained something, and the spectral norms are covered (their u vectors moved).
    assert any(
        not torch.equal(reference[0][k], reference[1][k]) for k in reference[0] if k != "losses"
    )
    assert any(k.endswith("._u") for k in reference[0]), "no spectral norm in this case"
