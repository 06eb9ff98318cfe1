"""Device time of a trial (trainers.cost): what is held, the phases, targets, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from sislab.errors import SpecError
from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.checkpoint import read_meta
from sislab.trainers.context import LocalContext
from sislab.trainers.cost import CostMeter, cost_config, reached
from sislab.trainers.loop import run_training
from sislab.trainers.tracking import MemoryTracker

from .test_loop import SPEC

PHASES = ("train", "eval", "data_wait", "other")


def test_devices_held_are_workers_resources_plus_the_driver_cpus() -> None:
    cpu = cost_config(False, 2, 0.4, 1.0, 0.1)
    assert (cpu.kind, cpu.devices) == ("cpu", pytest.approx(0.9))
    gpu = cost_config(True, 4, 8.0, 0.5, 0.1, {"fid": 60.0})
    assert (gpu.kind, gpu.devices, gpu.targets) == ("gpu", 2.0, {"fid": 60.0})


def test_targets_follow_the_metric_direction_and_count_once() -> None:
    assert reached("fid", 59.0, 60.0) and not reached("fid", 61.0, 60.0)
    assert reached("miou", 0.5, 0.4) and not reached("miou", 0.3, 0.4)
    meter = CostMeter(cost_config(False, 1, 2.0, 1.0, 0.0, {"fid": 60.0, "miou": 0.4}))
    assert meter.check_targets({"eval/fid": 70.0, "eval/miou": 0.1}, 10) == {}
    first = meter.check_targets({"eval/fid": 55.0, "eval/miou": 0.1}, 20)
    assert set(first) == {"target/fid_step", "target/fid_device_hours"}
    assert first["target/fid_step"] == 20.0 and first["target/fid_device_hours"] > 0
    assert meter.check_targets({"eval/fid": 50.0}, 30) == {}  # the first time only
    # A resumed meter remembers what was reached.
    resumed = CostMeter(meter.config)
    resumed.load(meter.state())
    assert resumed.check_targets({"eval/fid": 40.0}, 40) == {}
    assert CostMeter.disabled().check_targets({"eval/fid": 1.0}, 1) == {}


def _train(tmp_path: Path, tracker: MemoryTracker, meter: CostMeter, epochs: int) -> None:
    spec = spec_from_dict(dict(SPEC, train=dict(SPEC["train"], epochs=epochs)))
    ctx = LocalContext(tmp_path)
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
    run_training(
        build.loop_config(spec, geometry, None),
        ctx=ctx,
        source=build.synthetic_source(spec, 0, 1),
        tracker=tracker,
        procedure=procedure,
        meter=meter,
    )


def test_loop_logs_device_seconds_that_add_up_and_resume_continues_them(tmp_path: Path) -> None:
    config = cost_config(False, 1, 0.5, 1.0, 0.25)  # 0.75 CPUs held
    tracker = MemoryTracker()
    _train(tmp_path, tracker, CostMeter(config), epochs=1)
    costs = [(step, m) for step, m in tracker.metrics if "cost/device_s" in m]
    # After each epoch and once at the end, cumulative.
    assert [step for step, _ in costs] == [2, 2]
    last = costs[-1][1]
    assert last["cost/device_s"] == pytest.approx(0.75 * last["cost/wall_s"])
    parts = sum(last[f"cost/device_s_{p}"] for p in PHASES)
    assert parts == pytest.approx(last["cost/device_s"], rel=1e-6)
    assert last["cost/device_s_train"] > 0 and last["cost/device_s_data_wait"] > 0
    assert last["cost/cpu_hours"] == pytest.approx(last["cost/device_s"] / 3600)
    assert last["cost/images_per_s"] == pytest.approx(2 * 2 / last["cost/wall_s"])
    assert "cost/gpu_hours" not in last
    walls = [m["cost/wall_s"] for _, m in costs]
    assert walls == sorted(walls)
    # The checkpoint carries the count; a restarted trial continues it.
    saved = read_meta(sorted(tmp_path.glob("checkpoint_*"))[-1]).cost
    assert saved["wall_s"] <= last["cost/wall_s"] and saved["train_s"] > 0
    resumed = MemoryTracker()
    _train(tmp_path, resumed, CostMeter(config), epochs=2)
    (_, after), *_ = [(s, m) for s, m in resumed.metrics if "cost/wall_s" in m]
    assert after["cost/wall_s"] > saved["wall_s"]
    assert after["cost/device_s_train"] > 0.75 * saved["train_s"]


def test_loop_without_a_meter_logs_no_cost(tmp_path: Path) -> None:
    tracker = MemoryTracker()
    _train(tmp_path, tracker, None, epochs=1)
    assert not [k for _, m in tracker.metrics for k in m if k.startswith("cost/")]


def test_a_target_must_be_an_evaluated_metric() -> None:
    with pytest.raises(SpecError, match=r"target \['miou'\] not in eval.metrics"):
        spec_from_dict(dict(SPEC, eval={"metrics": ["fid"], "target": {"miou": 0.5}}))
