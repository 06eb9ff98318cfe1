"""DDP equivalence of every training procedure: 2 ranks x batch B == 1 rank x batch 2B.

Each procedure (SPADE family with CLADE+ICPE, OASIS family, GroupDNet, SC-GAN) is built by the
worker's own code (``build.build_procedure`` with ``worker.make_wrap``: DDP and cross-rank batch
norm) on two gloo ranks and, as the reference, in one process with the whole batch. Both set-ups
draw the same noise sample for sample (``SharedNoise``). After each of two optimisation steps
every weight and buffer (BN running statistics, spectral-norm vectors, the OASIS EMA generator,
Adam's moments) of the two set-ups is compared, and the two ranks must hold bit-identical
states. The second step also catches a parameter left without a gradient, which DDP reports only
at the following iteration.
In normal training (no hook) the ranks must draw different noise: the loop seeds each rank by
``derive_seed(seed, rank, epoch)``.

The same spawn runs test_accumulation's 2 ranks x 2 micro-batches cases (``ACCUMULATION_CASES``)
against one rank with the whole batch, counting DDP's all-reduces per micro-batch.
"""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tests.trainers import test_accumulation as accumulation
from tests.trainers.shared_noise import RecordedNoise, SharedNoise
from tests.trainers.test_groupdnet_procedure import GROUPDNET
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.loop import derive_seed
from sislab.trainers.worker import make_wrap

SIZE = 64  # OASIS's U-Net D halves 64 px six times; the others' smallest latent is 2x2
NUM_CLASSES = 4
PER_RANK = 3  # B; the reference trains on 2B (LabelMix's 4 bits are neither B nor 2B rows)
STEPS = 2
SEED = 3

# One tiny configuration per procedure; the SPADE family three times, to cover the VAE encoder
# (KL, reparameterisation noise), CLADE's class tables with ICPE's offsets, and VASIS's semantic
# noise and learnable position code in the norms. (tests/e2e/test_method_sweeps.py trains one
# method per procedure through Ray with 2 workers; these cases are the other methods' DDP check.)
CASES = {
    "spade-vae": (
        "spade",
        {"ngf": 8, "ndf": 8, "spade_hidden": 8, "use_vae": True, "z_dim": 8, "num_d": 1},
    ),
    "clade-icpe": ("clade-icpe", {"ngf": 8, "ndf": 8, "num_d": 1}),
    "va-spade": ("va-spade", {"ngf": 8, "ndf": 8, "spade_hidden": 8, "position_code": "learn"}),
    "oasis": ("oasis", {"ngf": 8, "ndf": 8, "z_dim": 4, "spade_hidden": 8, "ema_decay": 0.9}),
    "groupdnet": ("groupdnet", GROUPDNET),  # test_groupdnet_procedure's tiny GroupDNet
    "scgan": (
        "scgan",
        {"ngf": 2, "nff": 2, "nrf": 2, "ndf": 4, "num_candidates": 2, "use_vae": True, "z_dim": 8},
    ),
}


def _spec(method: str, model: dict):
    return spec_from_dict(
        {
            "name": "ddp",
            "method": method,
            "dataset": {
                "uri": f"synthetic://shapes?size={SIZE}&classes={NUM_CLASSES}&num=12&val=2",
                "image_size": [SIZE, SIZE],
            },
            "model": model,
            "train": {"epochs": 1, "batch_size": 2 * PER_RANK, "seed": SEED, "lr_decay_epochs": 0},
            "losses": {"perceptual": 0.0},
            "resources": {"num_workers": 1},
        }
    )


def _batches() -> list[dict[str, torch.Tensor]]:
    """STEPS global batches of 2B samples of 4x4 random class cells, every class present."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for _ in range(STEPS):
        cells = torch.randint(0, NUM_CLASSES, (2 * PER_RANK, 1, 4, 4), generator=generator)
        cells[:, :, 0, 0] = NUM_CLASSES - 1
        label = torch.nn.functional.interpolate(cells.float(), size=(SIZE, SIZE)).long()
        image = torch.rand(2 * PER_RANK, 3, SIZE, SIZE, generator=generator, dtype=torch.float64)
        image = image * 2 - 1
        out.append({"image": image, "label": label})
    return out


def _state(procedure) -> dict[str, torch.Tensor]:
    """Every tensor of the procedure's state (networks with buffers, EMA, optimiser moments)."""
    flat = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, torch.Tensor):
            flat[prefix] = node.detach().clone()
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}", value)
        elif isinstance(node, list | tuple):
            for i, value in enumerate(node):
                walk(f"{prefix}.{i}", value)

    walk("", procedure.state_dict())
    return flat


def _train(case: str, rank: int, world_size: int) -> dict:
    """Two shared-noise steps, then one step with the rank's own noise; returns the states.

    In float64: Adam's first step moves a weight by about ``lr * sign(grad)``, so a gradient that
    is zero up to float32 rounding (a bias followed by batch norm) would move by +-lr in one set-up
    and -+lr in the other; in float64 such rounding stays far below Adam's epsilon.
    """
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _train_float64(case, rank, world_size)
    finally:
        torch.set_default_dtype(default)


def _train_float64(case: str, rank: int, world_size: int) -> dict:
    method, model = CASES[case]
    spec = _spec(method, model)
    geometry = build.dataset_geometry(spec)
    device = torch.device("cpu")
    wrap = make_wrap(device, world_size, spec.train.sync_bn)
    procedure, _ = build.build_procedure(spec, geometry, device, world_size, wrap)
    local = 2 * PER_RANK // world_size
    rows = slice(rank * local, (rank + 1) * local)
    states = []
    for step, batch in enumerate(_batches()):
        mine = {k: v[rows] for k, v in batch.items()}
        with SharedNoise(rank, world_size, local, seed=step):
            losses = procedure.train_step(mine)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        states.append(_state(procedure))
    # Normal training: the loop seeds the global RNG per (seed, rank, epoch).
    first = {k: v[rows] for k, v in _batches()[0].items()}
    torch.manual_seed(derive_seed(SEED, rank, 0))
    with RecordedNoise() as recorded:
        procedure.train_step(first)
    return {"states": states, "noise": recorded.draws}


# Cases whose step draws no random numbers (no VAE, no noise input).
NOISE_FREE = ("clade-icpe",)
# test_accumulation's cases that also run on 2 ranks x 2 micro-batches of 1 (the VAE's KL scaling
# and encoder, OASIS's class counts, LabelMix, EMA and three D calls per step).
ACCUMULATION_CASES = ("spade-vae", "oasis")


def _train_accumulated(case: str, rank: int) -> dict:
    """test_accumulation's steps on 2 ranks x 2 micro-batches; all-reduces counted per pass."""
    counter = {"allreduces": 0, "snapshots": []}

    def hook(state, bucket):
        counter["allreduces"] += 1
        return allreduce_hook(state, bucket)

    def watch(procedure, noise) -> None:
        if not counter["snapshots"]:
            nets = (
                procedure.generator,
                getattr(procedure, "encoder", None),
                procedure.discriminator,
            )
            for net in nets:
                if isinstance(net, DistributedDataParallel):
                    net.register_comm_hook(None, hook)
        begin = noise.begin

        def counted(side: str) -> None:
            counter["snapshots"].append(counter["allreduces"])
            begin(side)

        noise.begin = counted

    states = accumulation.train(case, rank, 2, 2, watch=watch)
    snapshots = [*counter["snapshots"], counter["allreduces"]]
    return {"states": states, "allreduces": [b - a for a, b in itertools.pairwise(snapshots)]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        results = {case: _train(case, rank, 2) for case in CASES}
        results["accumulated"] = {
            case: _train_accumulated(case, rank) for case in ACCUMULATION_CASES
        }
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The two ranks' and the reference's results of every case (one spawn for all cases)."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=2, join=True)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    reference = {case: _train(case, 0, 1) for case in CASES}
    accumulated = {case: accumulation.train(case, 0, 1, 1) for case in ACCUMULATION_CASES}
    return {"ranks": ranks, "reference": reference, "accumulation_reference": accumulated}


def _max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(
        (x.double() - y.double()).abs().max().item()
        for x, y in zip(a.values(), b.values(), strict=True)
    )


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_equal_one_rank_with_the_whole_batch(runs, case: str) -> None:
    rank0, rank1 = runs["ranks"][0][case], runs["ranks"][1][case]
    reference = runs["reference"][case]
    for step in range(STEPS):
        ddp, ref = rank0["states"][step], reference["states"][step]
        # Both ranks hold the same weights, buffers, EMA and optimiser moments.
        for key, value in ddp.items():
            assert torch.equal(value, rank1["states"][step][key]), f"step {step + 1}: {key}"
        # Measured (float64): at most 1.6e-11 over all tensors (SC-GAN); without the global KL
        # sum and class counts the gaps were 2e-5 (GroupDNet BN statistics) to 8e-4 (SC-GAN D).
        for key, value in ddp.items():
            torch.testing.assert_close(
                value, ref[key], rtol=1e-7, atol=1e-9, msg=lambda m, k=key: f"{k}: {m}"
            )
        difference = _max_abs_difference(ddp, ref)
        print(f"{case}: step {step + 1}: max |w_ddp - w_ref| = {difference:.3g}")
    changed = [k for k in reference["states"][0] if "generator" in k]
    assert any(
        not torch.equal(reference["states"][0][k], reference["states"][1][k]) for k in changed
    )


@pytest.mark.parametrize("case", list(CASES))
def test_ranks_draw_different_noise_in_normal_training(runs, case: str) -> None:
    draws0, draws1 = runs["ranks"][0][case]["noise"], runs["ranks"][1][case]["noise"]
    if case in NOISE_FREE:
        assert draws0 == draws1 == []
        return
    assert draws0 and len(draws0) == len(draws1)
    assert all(not torch.equal(a, b) for a, b in zip(draws0, draws1, strict=True) if a.numel() > 4)
    # The same (seed, rank, epoch) draws the same noise again (a resumed epoch).
    assert derive_seed(SEED, 0, 0) != derive_seed(SEED, 1, 0)


@pytest.mark.parametrize("case", ACCUMULATION_CASES)
def test_two_ranks_with_two_micro_batches_equal_one_pass_over_the_whole_batch(runs, case):
    rank0, rank1 = (runs["ranks"][r]["accumulated"][case] for r in (0, 1))
    reference = runs["accumulation_reference"][case]
    states = []
    for state0, state1 in zip(rank0["states"], rank1["states"], strict=True):
        for key, value in state0.items():
            if key != "losses":
                assert torch.equal(value, state1[key]), key
        # Each rank's losses are its rows' means; the loop logs their mean over the ranks.
        losses = {k: (v + state1["losses"][k]) / 2 for k, v in state0["losses"].items()}
        states.append({**state0, "losses": losses})
    accumulation.assert_same_states(case, states, reference, "2 ranks x 2 micro-batches")
    # Per step: G's first micro-batch, G's last, D's first, D's last. no_sync: the gradients are
    # all-reduced once per side, after the last micro-batch.
    counts = rank0["allreduces"]
    assert len(counts) == 4 * accumulation.STEPS, counts
    for step in range(accumulation.STEPS):
        g_first, g_last, d_first, d_last = counts[4 * step : 4 * step + 4]
        assert g_first == 0 and d_first == 0, counts
        assert g_last > 0 and d_last > 0, counts
