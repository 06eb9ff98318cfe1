"""The sweep's driver frees the placement groups whose creating actor (a Train controller) died."""

from __future__ import annotations

import time

import ray
from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group

from sislab.orchestrator.placement_groups import ReleaseOrphanedGroups, orphaned_groups


@ray.remote(num_cpus=0)
class _Controller:
    """Stands for a Train controller: it creates its workers' group."""

    def make_group(self) -> str:
        group = placement_group([{"CPU": 0.01}])
        group.wait(timeout_seconds=60)
        return group.id.hex()


def _state(pg_id: str) -> str:
    return placement_group_table()[pg_id]["state"]


def test_a_group_is_removed_once_its_creator_dies_and_not_before(ray_cluster) -> None:
    living, stopped = _Controller.remote(), _Controller.remote()
    living_group, stopped_group = ray.get([living.make_group.remote(), stopped.make_group.remote()])
    tunes_own = placement_group([{"CPU": 0.01}])  # made by the driver, as Tune's trial groups are
    tunes_own.wait(timeout_seconds=60)
    callback = ReleaseOrphanedGroups()

    # Its controller lives: removing the group would only make it start a new worker group.
    callback.on_step_end(1, [])
    assert _state(stopped_group) == "CREATED"

    ray.kill(stopped)  # Tune stopped the trial: its process, and the controller, are gone
    job = ray.get_runtime_context().get_job_id()
    deadline = time.monotonic() + 60
    while stopped_group not in orphaned_groups(job) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the GCS has processed the death
    assert orphaned_groups(job) == [stopped_group]
    ReleaseOrphanedGroups().on_step_end(2, [])  # a new callback checks at once
    assert _state(stopped_group) == "REMOVED" and _state(living_group) == "CREATED"

    ray.kill(living)
    callback.on_experiment_end([])  # waits (bounded) until no actor-made group is left
    assert _state(living_group) == "REMOVED"
    assert _state(tunes_own.id.hex()) == "CREATED"
    remove_placement_group(tunes_own)


def test_the_end_of_a_sweep_removes_a_group_whose_creator_outlived_it(
    ray_cluster, monkeypatch, caplog
) -> None:
    from sislab.orchestrator import placement_groups

    monkeypatch.setattr(placement_groups, "END_WAIT_S", 0.5)
    lingering = _Controller.remote()
    group = ray.get(lingering.make_group.remote())
    ReleaseOrphanedGroups().on_experiment_end([])
    # Every trial has ended: nothing of the sweep needs the group, whoever made it.
    assert _state(group) == "REMOVED"
    assert f"still held 0 s after the sweep's last trial: {group}" in caplog.text
    ray.kill(lingering)
