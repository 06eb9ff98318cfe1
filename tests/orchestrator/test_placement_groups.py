"""The Tune driver frees the placement groups of every trial whose process has exited."""

from __future__ import annotations

import ray
from ray.tune.experiment import Trial
from ray.util.placement_group import placement_group, placement_group_table

from sislab.orchestrator.placement_groups import ReleaseStoppedTrialGroups
from sislab.trainers.worker import PLACEMENT_GROUP_KEY


@ray.remote(num_cpus=0)
class _TrialProcess:
    """Stands for a Tune trial's actor (whose death takes its Train controller along)."""


def _trial(trial_id: str) -> Trial:
    trial = Trial("sislab", trial_id=trial_id, stub=True)  # stub: no registered trainable
    trial.temporary_state.ray_actor = _TrialProcess.remote()
    trial.set_status(Trial.RUNNING)
    return trial


def _group():
    group = placement_group([{"CPU": 0.01}])
    group.wait(timeout_seconds=60)
    return group


def _state(group) -> str:
    return placement_group_table(group)["state"]


def test_a_group_is_removed_once_its_trial_process_exits_and_not_before(ray_cluster) -> None:
    running, halted = _trial("running"), _trial("halted")
    trials = [running, halted]
    groups = {"running": _group(), "halted": _group()}
    callback = ReleaseStoppedTrialGroups()
    for trial in trials:
        result = {"epoch": 1, PLACEMENT_GROUP_KEY: groups[trial.trial_id].id.hex()}
        callback.on_trial_result(1, trials, trial, result)

    # Paused, but its process (and so its Train controller) still lives: removing the group
    # now would only make the controller start a new worker group.
    halted.set_status(Trial.PAUSED)
    callback.on_step_end(2, trials)
    assert _state(groups["halted"]) == "CREATED"

    ray.kill(halted.temporary_state.ray_actor)
    callback.on_experiment_end(trials)  # waits (bounded) for the process to be gone
    assert _state(groups["halted"]) == "REMOVED"
    assert _state(groups["running"]) == "CREATED"  # its trial still runs in that process

    running.set_status(Trial.TERMINATED)
    ray.kill(running.temporary_state.ray_actor)
    callback.on_experiment_end(trials)
    assert _state(groups["running"]) == "REMOVED"
