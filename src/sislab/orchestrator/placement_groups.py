"""Freeing the placement group of every trial that Tune stopped, paused or lost.

A trial's Train controller owns its workers' placement group, but Ray scopes the group to the
job: when Tune kills a trial's process (ASHA stops it, PBT pauses it) the controller dies and
the group lives on, holding its CPUs/GPUs until the sweep's driver exits. Ray Train's own
``PlacementGroupCleaner`` covers most of these deaths, not all: it learns of a group only after
the worker group has started and is stopped when the controller aborts, and on a loaded machine
a group was left behind now and then (a CI run: the PBT test; here: the ASHA test). In a long
sweep each is capacity no later trial gets. Rank 0 reports its group's id with each result
(``trainers.worker.PLACEMENT_GROUP_KEY``); this callback, on the Tune driver, removes the groups
of each trial whose process has exited (paused, stopped, failed or restarted).
"""

from __future__ import annotations

import logging
import time

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.util.placement_group import PlacementGroup, remove_placement_group

from sislab.trainers.worker import PLACEMENT_GROUP_KEY

logger = logging.getLogger(__name__)

# How often the processes of stopped trials are asked whether they are gone.
CHECK_EVERY_S = 1.0
# How long the end of a sweep waits for the last trials' processes to exit.
END_WAIT_S = 15.0
# How long one liveness question may take: a trial process busy in Tune's `train` call answers
# only after it, and counts as alive.
ANSWER_WAIT_S = 0.2


def _group(pg_id: str) -> PlacementGroup:
    from ray._raylet import PlacementGroupID

    return PlacementGroup(PlacementGroupID.from_hex(pg_id))


def is_removed(pg_id: str) -> bool:
    """Whether Ray has removed the group (or never heard of it)."""
    return ray.util.placement_group_table(_group(pg_id)).get("state", "REMOVED") == "REMOVED"


def release_placement_group(pg_id: str) -> bool:
    """Remove the group ``pg_id`` (callers ask :func:`is_removed` first); False when Ray
    refused, the group having gone meanwhile."""
    try:
        remove_placement_group(_group(pg_id))
    except Exception:  # removed meanwhile (by its controller or Train's cleaner)
        logger.debug("placement group %s was already gone", pg_id, exc_info=True)
        return False
    return True


def actor_is_gone(actor: ActorHandle) -> bool:
    """Whether the actor's process has exited: a call on a dead actor fails at once.

    Asked through the actor's handle, not the dashboard's state API, which answered in seconds
    or not at all with both cores of a 2-core machine busy.
    """
    ref = actor.__ray_ready__.remote()
    ready, _ = ray.wait([ref], timeout=ANSWER_WAIT_S)
    if not ready:
        return False
    try:
        ray.get(ready[0])
    except RayActorError:
        return True
    return False


class ReleaseStoppedTrialGroups(Callback):
    """Tune callback: remove a trial's placement groups once the trial's process is gone.

    Only then: the Train controller dies with the trial's process, and a group removed while
    its controller still lives would only make it start a new worker group, in a new group.
    """

    def __init__(self) -> None:
        # trial id -> {group id: the trial process whose Train run made it}
        self._groups: dict[str, dict[str, ActorHandle]] = {}
        self._next_check = 0.0

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into the experiment state. `sislab resume` starts from an
        # empty record: the groups of the killed driver's trials went with its job.
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        pg_id = result.get(PLACEMENT_GROUP_KEY)
        actor = trial.temporary_state.ray_actor
        if pg_id and actor is not None:
            self._groups.setdefault(trial.trial_id, {})[pg_id] = actor

    def on_step_end(self, iteration: int, trials: list[Trial], **info) -> None:
        now = time.monotonic()
        if not self._groups or now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY_S
        self._release(trials)

    def on_experiment_end(self, trials: list[Trial], **info) -> None:
        deadline = time.monotonic() + END_WAIT_S
        while self._release(trials) and time.monotonic() < deadline:
            time.sleep(0.2)

    def _release(self, trials: list[Trial]) -> bool:
        """Release what can be; True while groups of exited-or-exiting trials remain."""
        current = {
            t.trial_id: t.temporary_state.ray_actor
            for t in trials
            if t.status == Trial.RUNNING and t.temporary_state.ray_actor is not None
        }
        waiting = False
        for trial_id, groups in list(self._groups.items()):
            for pg_id, actor in list(groups.items()):
                if current.get(trial_id) == actor:
                    continue  # the trial's running Train run holds it
                if is_removed(pg_id):  # its Train run ended and removed it (or Ray's cleaner)
                    del groups[pg_id]
                    continue
                if not actor_is_gone(actor):
                    waiting = True
                    continue
                del groups[pg_id]
                if release_placement_group(pg_id):
                    logger.info("freed the placement group of stopped trial %s", trial_id)
            if not groups:
                del self._groups[trial_id]
        return waiting
