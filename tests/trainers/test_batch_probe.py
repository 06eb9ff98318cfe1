"""``train.micro_batch_size: auto`` on CPU: the probe keeps the trial's peak RSS under the budget.

Real steps of a small SPADE at 128x128 (about 45 MB of peak RSS per image on this CPU);
``resources.memory_per_worker_mb`` is chosen so that the probe's budget (90% of it) lies halfway
between the measured peaks of micro-batches 2 and 4: the probe must choose 2, and the trial's own
steps (4 images in 2 micro-batches) must then peak under ``memory_per_worker_mb``.
"""

from __future__ import annotations

import pytest
import torch

from sislab.errors import TrainingError
from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.batch_probe import (
    CPU_MARGIN,
    device_budget_mb,
    peak_memory_mb,
    probe_micro_batch,
    reset_peak_memory,
    step_peak_mb,
    synthetic_batch,
)

CPU = torch.device("cpu")
WORKER_BATCH = 4


def _spec():
    return spec_from_dict(
        {
            "name": "probe",
            "method": "spade",
            "dataset": {"uri": "synthetic://shapes?size=128&classes=4&num=8&val=2",
                        "image_size": [128, 128]},
            "model": {"ngf": 8, "ndf": 8, "spade_hidden": 16, "num_d": 1},
            "train": {"epochs": 1, "batch_size": WORKER_BATCH, "micro_batch_size": "auto",
                      "lr_decay_epochs": 0},
            "losses": {"perceptual": 0.0},
            "resources": {"num_workers": 1, "memory_per_worker_mb": 4000},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def setup():
    spec = _spec()
    geometry = build.dataset_geometry(spec)

    def procedure():
        return build.build_procedure(spec, geometry, CPU, 1, lambda m: m)[0]

    return procedure, geometry


def test_probe_picks_the_largest_micro_batch_under_the_budget_and_training_stays_under(setup):
    procedure, geometry = setup
    two, four = (step_peak_mb(procedure, geometry, m, CPU) for m in (2, 4))
    print(f"peak RSS: micro-batch 2 {two:.0f} MB, 4 {four:.0f} MB")
    assert four > two + 30  # two images more are distinguishable from RSS noise
    # resources.memory_per_worker_mb such that the probe's budget (CPU_MARGIN of it) lies
    # halfway between the two peaks.
    memory_per_worker_mb = (two + four) / 2 / CPU_MARGIN
    budget = device_budget_mb(CPU, memory_per_worker_mb)

    result = probe_micro_batch(procedure, geometry, WORKER_BATCH, CPU, budget)

    assert (result.micro_batch_size, result.accumulation) == (2, 2), result
    assert result.tried[4] > budget >= result.peak_mb, result
    assert result.params()["probe.grad_accumulation"] == "2"
    # The trial's steps: the whole worker batch in the chosen micro-batches.
    trial = procedure()
    trial.accumulation = result.accumulation
    batch = synthetic_batch(geometry, WORKER_BATCH, CPU)
    reset_peak_memory(CPU)
    for _ in range(2):
        trial.train_step(batch)
    peak = peak_memory_mb(CPU)
    print(f"memory_per_worker_mb {memory_per_worker_mb:.0f} (probe budget {budget:.0f}); the "
          f"trial's steps peak at {peak:.0f} MB")  # fmt: skip
    assert peak <= memory_per_worker_mb


def test_probe_refuses_a_budget_that_not_even_one_image_fits(setup):
    procedure, geometry = setup
    with pytest.raises(TrainingError, match="even one image per step needs"):
        probe_micro_batch(procedure, geometry, WORKER_BATCH, CPU, budget_mb=1.0)
