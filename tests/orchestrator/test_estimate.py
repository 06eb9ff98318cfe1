"""``sislab estimate``'s arithmetic on a tiny sweep: trials, shared timings, hours, money."""

from __future__ import annotations

import pytest

from sislab.orchestrator.estimate import concurrency, estimate_sweep, render
from sislab.spec.loader import spec_from_dict

SPEC = {
    "name": "est",
    "method": "spade",
    "dataset": {"uri": "synthetic://shapes?size=32&classes=3&num=8&val=2", "image_size": [32, 32]},
    "model": {"ngf": 4, "ndf": 4},
    "train": {"epochs": 3, "batch_size": 4},
    "eval": {"metrics": []},
    "resources": {"num_workers": 2, "cpus_per_worker": 0.5, "trial_driver_cpus": 0.1},
    "cost": {"cpu_hour": 0.05, "currency": "EUR"},
    "search": {"space": {"model.ngf": {"grid": [4, 8]}, "train.lr_g": {"grid": [1e-4, 2e-4]}}},
}


def test_trials_sharing_networks_share_one_timing_and_add_up() -> None:
    spec = spec_from_dict(SPEC)
    estimate = estimate_sweep(spec, iters=1, warmup=0, available={"CPU": 2.0})
    assert estimate.num_trials == 4
    # The learning rate does not change s/iter: two configurations (ngf 4, ngf 8), 2 trials each.
    assert sorted(len(c.trial_wall_s) for c in estimate.configs) == [2, 2]
    for c in estimate.configs:
        assert (c.kind, c.devices) == ("cpu", pytest.approx(1.1))  # 2 x 0.5 + the driver's 0.1
        assert c.iters_per_trial == [6, 6]  # 8 rows / 2 workers / 2 per worker, x 3 epochs
        assert c.eval_s is None and c.evals_per_trial == [0, 0]
        assert c.trial_wall_s[0] == pytest.approx(c.setup_s + 6 * c.s_per_iter)
    hours = sum(1.1 * w for c in estimate.configs for w in c.trial_wall_s) / 3600
    assert estimate.hours("cpu") == pytest.approx(hours) and estimate.hours("gpu") == 0
    assert estimate.concurrency == 1  # 2 CPUs, 1.1 per trial
    assert estimate.wall_s == pytest.approx(3600 * hours / 1.1)
    metrics = estimate.metrics()
    assert metrics["cost/estimate_total"] == pytest.approx(0.05 * hours)
    assert metrics["cost/estimate_cpu_hours"] == pytest.approx(hours)
    text = "\n".join(render(estimate))
    assert "4 trial(s), 2 distinct configuration(s), 1 at a time" in text
    assert f"{hours:.4f} CPU-hours, {0.05 * hours:.4g} EUR" in text
    assert "DDP gradient all-reduce between workers not timed" in text


def test_concurrency_from_the_spec_or_the_resources() -> None:
    spec = spec_from_dict(SPEC)
    assert concurrency(spec, {"CPU": 4.0}) == 3  # floor(4 / 1.1)
    gpu = spec_from_dict(dict(SPEC, resources={"num_workers": 2, "use_gpu": True}))
    assert concurrency(gpu, {"CPU": 64.0, "GPU": 8.0}) == 4
    capped = spec_from_dict(dict(SPEC, search=dict(SPEC["search"], max_concurrent_trials=2)))
    assert concurrency(capped, {"CPU": 64.0}) == 2
