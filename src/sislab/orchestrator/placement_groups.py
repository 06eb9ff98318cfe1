"""Freeing the placement groups whose creating actor has died: the orphans of stopped trials.

A trial's Train controller creates its workers' placement group, but Ray scopes a group to the
job, not to the actor that made it: when Tune kills a trial's process (ASHA stops it, PBT pauses
it, a node or an OOM kill takes it) the controller dies with it and the group lives on, holding
its CPUs/GPUs until the sweep's driver exits. Ray Train starts a ``PlacementGroupCleaner`` actor
per run for this, which watches its controller through the dashboard's state API; it learns of
a group only once the worker group has started, it left groups behind now and then on a loaded
machine (a CI run: the PBT test; here: the ASHA test), and it is one more process per trial.
``orchestrator.trial.TrialTrainer`` leaves it out; instead, the sweep's driver asks the GCS once
a second for the groups of its own job whose creating actor is dead, and removes them: every
orphan, whenever its controller died, with no process per trial and no dashboard. Tune's own
trial groups are created by the driver, not by an actor, and stay Tune's to manage.
"""

from __future__ import annotations

import logging
import time

import ray
from ray.core.generated import gcs_pb2
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.util.placement_group import PlacementGroup, remove_placement_group

logger = logging.getLogger(__name__)

# How often the driver looks for orphaned groups.
CHECK_EVERY_S = 1.0
# How long the end of a sweep waits for the last Train runs to hand back their groups.
END_WAIT_S = 15.0
_NO_ACTOR = "f" * 32  # the creator id of a group a driver made


def _job_id() -> str:
    # Asked each time, not kept: `sislab resume` unpickles this callback into a new job.
    return ray.get_runtime_context().get_job_id()


def _group(pg_id: str) -> PlacementGroup:
    from ray._raylet import PlacementGroupID

    return PlacementGroup(PlacementGroupID.from_hex(pg_id))


def _actor_made_groups(job_id: str) -> list[gcs_pb2.PlacementGroupTableData]:
    """The job's live groups that an actor created, straight from the GCS's table.

    ``ray.util.placement_group_table`` leaves out who created a group and whether that actor
    is dead; the GCS keeps both (it removes a group itself only once its job is dead too).
    """
    accessor = ray._private.state.state._connect_and_get_accessor()
    groups = (gcs_pb2.PlacementGroupTableData.FromString(raw)
              for raw in accessor.get_placement_group_table())  # fmt: skip
    return [
        g
        for g in groups
        if g.state != gcs_pb2.PlacementGroupTableData.REMOVED
        and not g.is_detached
        and g.creator_job_id.hex() == job_id
        and g.creator_actor_id.hex() != _NO_ACTOR
    ]


def orphaned_groups(job_id: str) -> list[str]:
    """Hex ids of the job's live groups whose creating actor has died."""
    return [g.placement_group_id.hex() for g in _actor_made_groups(job_id) if g.creator_actor_dead]


def release_placement_group(pg_id: str) -> bool:
    """Remove the group ``pg_id``; False when Ray refused, the group having gone meanwhile."""
    try:
        remove_placement_group(_group(pg_id))
    except Exception:  # removed meanwhile (by its controller)
        logger.debug("placement group %s was already gone", pg_id, exc_info=True)
        return False
    return True


def release_orphaned_groups(job_id: str) -> list[str]:
    """Remove every orphaned group of the job (one read of the GCS's table).

    Returns:
        Hex ids of the job's actor-made groups whose creator was alive: the groups still held.
    """
    groups = _actor_made_groups(job_id)
    released = sum(
        release_placement_group(g.placement_group_id.hex()) for g in groups if g.creator_actor_dead
    )
    if released:
        logger.info("freed %d placement group(s) of stopped trials", released)
    return [g.placement_group_id.hex() for g in groups if not g.creator_actor_dead]


class ReleaseOrphanedGroups(Callback):
    """Tune callback: once a second, remove the groups whose Train controller has died.

    A group whose controller lives is never touched: the controller removes it when its run
    ends, and removing it earlier would only make the controller start a new worker group.
    """

    def __init__(self) -> None:
        self._next_check = 0.0

    def on_step_end(self, iteration: int, trials: list[Trial], **info) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + CHECK_EVERY_S
            release_orphaned_groups(_job_id())

    def on_experiment_end(self, trials: list[Trial], **info) -> None:
        """Wait (bounded) until the last trials' groups are removed or orphaned and freed; then
        remove what is still held: every trial has ended, so no run of the sweep needs it."""
        job_id, deadline = _job_id(), time.monotonic() + END_WAIT_S
        while (ids := release_orphaned_groups(job_id)) and time.monotonic() <= deadline:
            time.sleep(0.2)
        if not ids:
            return
        # Seen once in a whole test suite, after a PBT sweep: a group whose creating controller
        # was still reported alive 75 s after Tune had stopped its trial.
        logger.warning(
            "removing %d placement group(s) still held %.0f s after the sweep's last trial: %s",
            len(ids), END_WAIT_S, ", ".join(ids),
        )  # fmt: skip
        for pg_id in ids:
            release_placement_group(pg_id)
