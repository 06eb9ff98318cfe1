"""SIGKILL of Ray processes by role, on whichever node they run.

Train workers and Tune trial actors are found in the GCS actor table (``ray._private.state``: the
public ``ray.util.state`` needs the dashboard, which sislab's local Ray and the tests leave off);
a process on this machine is killed directly, one on another node by a zero-CPU task pinned to
that node. Only alive actors of the given class are candidates; the seeded ``pick`` chooses one.
"""

from __future__ import annotations

import contextlib
import os
import signal

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

TRAIN_WORKER_CLASS = "RayTrainWorker"
# A function trainable's actor (``tune.with_parameters`` over sislab's trial driver).
TRIAL_ACTOR_CLASS = "ImplicitFunc"


def alive_actors(class_name: str) -> list[dict]:
    """Alive actors whose class name ends with ``class_name``, oldest first (stable order)."""
    from ray._private import state

    actors = [
        a
        for a in state.actors().values()
        if a["State"] == "ALIVE" and a["ActorClassName"].endswith(class_name) and a["Pid"]
    ]
    return sorted(actors, key=lambda a: (a["StartTime"], a["ActorID"]))


@ray.remote(num_cpus=0)
def _kill_on_node(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def kill_actor_process(actor: dict) -> None:
    """SIGKILL the actor's worker process, on its node."""
    node_id = actor["Address"]["NodeID"]
    if node_id == ray.get_runtime_context().get_node_id():
        with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
            os.kill(actor["Pid"], signal.SIGKILL)
        return
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
    ray.get(_kill_on_node.options(scheduling_strategy=strategy).remote(actor["Pid"]))


def kill_one(class_name: str, pick: int) -> dict | None:
    """Kill one alive actor of ``class_name`` (the ``pick``-th modulo their number); the actor
    killed, or None when none is alive."""
    actors = alive_actors(class_name)
    if not actors:
        return None
    victim = actors[pick % len(actors)]
    kill_actor_process(victim)
    return victim
