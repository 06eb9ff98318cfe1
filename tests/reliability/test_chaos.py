"""Faults together: one sweep (2 trials x 4 epochs, 2 Train workers each; data and checkpoints on
a moto S3 server, MLflow on an ``mlflow server`` subprocess) under a fault schedule drawn from a
seed: two Train workers and one trial driver SIGKILLed, the Tune driver SIGKILLed and the sweep
continued with ``sislab resume``, S3 stopped for 8 s, the MLflow server restarted. What
``sislab chaos SPEC --seed N --test-servers --worker-kills 2`` runs, in this process on the
session's Ray. (This is also the suite's test of worker loss and of ``sislab resume`` after a
killed driver: each fault alone is a subset of this run.)

One trial trains on synthetic layouts rendered in the workers, its final weights compared with an
unfaulted 2-rank reference; the other reads the same layouts as Parquet shards from S3 through Ray
Data, each epoch's rows checked against the split.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from sislab.chaos.invariants import WEIGHT_ATOL
from sislab.chaos.schedule import NEEDS_TEST_SERVERS, TRIAL_DRIVER_KILL, TUNE_DRIVER_KILL
from sislab.cli.chaos import result_table
from sislab.datasets.storage import resolve
from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.datasets.synthetic_writer import write_synthetic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEED = 7
WORKER_KILLS = 2
OUTAGE_S = 8.0  # S3 down (`sislab chaos` defaults to 20 s): longer than a read's first retries
SYNTHETIC = "synthetic://shapes?size=32&classes=4&num=8&val=2"
SPEC = """\
name: chaos
method: spade
dataset:
  uri: {synthetic}
  image_size: [32, 32]
  read_retries: 5        # 0.5 s doubling: 15.5 s of waiting, past the 8 s outage
  retry_backoff_s: 0.5
model: {{ngf: 4, ndf: 4}}
losses: {{perceptual: 0}}
train:
  epochs: 4
  lr_decay_epochs: 0
  batch_size: 2          # 1 row per worker and iteration: 4 iterations cover the 8 rows
  log_every_iters: 1
  checkpoint_every_epochs: 1
  max_failures: 5
eval: {{num_grid_samples: 1, every_epochs: 100, metrics: []}}
resources: {{num_workers: 2, cpus_per_worker: 0.2}}
search:
  algorithm: grid
  max_concurrent_trials: 2
  space:
    dataset.uri: {{grid: ["{synthetic}", "{parquet}"]}}
"""


def test_chaos_run_keeps_every_invariant(ray_cluster, tmp_path: Path) -> None:
    from sislab.chaos.runner import run_chaos

    parquet = tmp_path / "shapes"
    write_synthetic(resolve(str(parquet)), parse_synthetic_uri(SYNTHETIC), target_bytes=3000)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC.format(synthetic=SYNTHETIC, parquet=parquet))

    result = run_chaos(
        spec_path, SEED, run_root=tmp_path / "chaos", test_servers=True,
        worker_kills=WORKER_KILLS, outage_s=OUTAGE_S, deadline_s=600,
    )  # fmt: skip

    Console(width=200).print(result_table(result))
    figures = result.figures
    print(
        f"faults injected {len(result.injected)}: "
        + ", ".join(i.fault.kind for i in result.injected)
        + f"; steps redone {figures.steps_redone}; duplicates {figures.duplicates}; gaps "
        f"{figures.gaps}; checkpoints checked {figures.checkpoints}; max weight difference "
        f"{figures.max_weight_diff} (last epoch moves them {figures.min_epoch_change}); "
        f"sweep {result.wall_s:.0f} s"
    )
    assert not figures.problems, figures.problems
    kinds = [i.fault.kind for i in result.injected]
    assert kinds.count("worker_kill") == WORKER_KILLS
    assert {TRIAL_DRIVER_KILL, TUNE_DRIVER_KILL, *NEEDS_TEST_SERVERS} <= set(kinds)
    assert all(check.ok for check in result.checks), [c for c in result.checks if not c.ok]
    assert figures.trials == 2 and figures.duplicates == 0 and figures.gaps == 0
    assert figures.max_weight_diff is not None and figures.max_weight_diff <= WEIGHT_ATOL
    # Equality means something: one epoch of training moves the weights far more.
    assert figures.min_epoch_change is not None and figures.min_epoch_change > 10 * WEIGHT_ATOL
    assert figures.epochs_rows_checked == 4
