"""Sweeps on the session's Ray with a stand-in trial: ASHA and multi-objective TPE.

Each trial reports a loss fixed by its learning rate (no model is trained), so what the
scheduler and searcher do is deterministic. The stand-in replaces the trial's Ray Train run
(``run_sweep(trial_fn=...)``, as ``sislab bench orchestration`` does): what is tested is sislab's
Tune side (spec, search space, searcher, scheduler, results, Pareto front); Train runs that Tune
stops or pauses are the PBT test's and the chaos test's, and a Train run's start-up (four more
processes) would only make these sweeps several times slower.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console

from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.spec.loader import load_spec

pytestmark = pytest.mark.e2e

BASE = """\
name: {name}
dataset: {{uri: "synthetic://shapes?size=32&classes=4&num=8&val=2", image_size: [32, 32]}}
model: {{ngf: 8, ndf: 8}}
train: {{epochs: {epochs}, lr_decay_epochs: 0, batch_size: 1, max_iters_per_epoch: 1}}
resources: {{num_workers: 1, cpus_per_worker: 0.1}}
search:
  max_concurrent_trials: 1
"""


def _stand_in_trial(overrides: dict, context) -> None:
    # Loss grows with lr_g; "generator params" grow with ngf: two conflicting objectives.
    import ray.tune

    from sislab.orchestrator.trial import trial_spec_of

    spec = trial_spec_of(context.spec_data, overrides)
    lr, ngf = spec.train.lr_g, spec.model.ngf
    for epoch in range(1, spec.train.epochs + 1):
        loss = lr * 1e4 + 1.0 / epoch - ngf * 0.01
        ray.tune.report(
            {"epoch": float(epoch), "train/loss_g": loss, "model/generator_params": float(ngf)}
        )


def _sweep(tmp_path: Path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    spec = load_spec(path)
    run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")
    outcome = run_sweep(
        spec, path, run_dir=run_dir, console=Console(quiet=True), trial_fn=_stand_in_trial
    )
    return outcome


def test_asha_stops_underperforming_trials_early(ray_cluster, tmp_path: Path) -> None:
    text = BASE.format(name="asha", epochs=9) + (
        "  algorithm: grid\n"
        "  space: {train.lr_g: {grid: [1.0e-4, 3.0e-4, 5.0e-4]}}\n"
        "  scheduler: {asha: {grace_period: 1, reduction_factor: 3}}\n"
    )
    outcome = _sweep(tmp_path, text)
    assert outcome.num_trials == 3 and outcome.num_errors == 0
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(Path(outcome.state.storage_path) / "sweep"))
    epochs = {t.config["train.lr_g"]: t.last_result["epoch"] for t in analysis.trials}
    assert epochs[1.0e-4] == 9  # the best trial runs to the end
    assert epochs[3.0e-4] < 9 and epochs[5.0e-4] < 9  # the worse ones stop at a rung


def test_multi_objective_tpe_reports_pareto_front(ray_cluster, tmp_path: Path) -> None:
    # All four trials at once: TPE samples its first trials at random anyway (Optuna's
    # n_startup_trials is 10), so this is the same search, in one wave of trials instead of two.
    text = BASE.format(name="mo-tpe", epochs=1).replace(
        "max_concurrent_trials: 1", "max_concurrent_trials: 4"
    ) + (
        "  algorithm: optuna\n"
        "  num_samples: 4\n"
        "  metric: [train/loss_g, model/generator_params]\n"
        "  mode: [min, min]\n"
        "  space:\n"
        "    train.lr_g: {loguniform: [1.0e-4, 1.0e-3]}\n"
        "    model.ngf: {choice: [4, 8, 16]}\n"
    )
    outcome = _sweep(tmp_path, text)
    assert outcome.num_trials == 4 and outcome.num_errors == 0
    front = list(outcome.pareto_front)
    assert front, "no Pareto front"
    for p in front:  # nobody dominates a front member
        assert not any(
            q["train/loss_g"] <= p["train/loss_g"]
            and q["model/generator_params"] <= p["model/generator_params"]
            and (q["train/loss_g"], q["model/generator_params"])
            != (p["train/loss_g"], p["model/generator_params"])
            for q in front
        )
    client = MlflowClient(outcome.state.tracking_uri)
    local = client.download_artifacts(
        outcome.state.parent_run_id, "pareto_front.json", str(tmp_path)
    )
    logged = json.loads(Path(local).read_text())
    assert logged["metrics"] == ["train/loss_g", "model/generator_params"]
    assert [p["trial_id"] for p in logged["front"]] == [p["trial_id"] for p in front]
