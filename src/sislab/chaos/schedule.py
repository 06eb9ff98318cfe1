"""The fault schedule of a chaos run, drawn from a seed.

Faults fire one after the other, each once the sweep has logged a drawn share of its training
steps (progress, not wall time: a loaded machine and restarts change how long a sweep takes, not
where in it the faults land), plus a drawn delay of up to half a second so that a fault lands at
an arbitrary point inside an iteration, a report or a checkpoint upload.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

WORKER_KILL = "worker_kill"  # SIGKILL of one Ray Train worker process
TRIAL_DRIVER_KILL = "trial_driver_kill"  # SIGKILL of one Tune trial actor (the Train driver)
TUNE_DRIVER_KILL = "tune_driver_kill"  # SIGKILL of `sislab run`, then `sislab resume`
S3_OUTAGE = "s3_outage"  # the S3 test server stopped, restarted on the same port
MLFLOW_RESTART = "mlflow_restart"  # the MLflow test server killed and started again

NEEDS_TEST_SERVERS = (S3_OUTAGE, MLFLOW_RESTART)


@dataclass(frozen=True)
class Fault:
    """One fault of the schedule.

    Args:
        kind: One of the kinds above.
        at_progress: Share of the sweep's training steps logged before it fires (0-1).
        delay_s: Extra wait after that point.
        pick: Seeded choice among the processes alive at that moment (which worker, which trial).
        duration_s: How long an outage lasts (S3).
    """

    kind: str
    at_progress: float
    delay_s: float
    pick: int
    duration_s: float = 0.0


def draw_schedule(
    seed: int, *, worker_kills: int, test_servers: bool, outage_s: float
) -> list[Fault]:
    """The faults of one chaos run, in firing order.

    Args:
        seed: The run's seed: the same seed draws the same schedule.
        worker_kills: How many Train workers are killed.
        test_servers: Whether sislab started the S3 and MLflow servers (their faults need them).
        outage_s: How long S3 is down.
    """
    rng = random.Random(seed)
    kinds = [WORKER_KILL] * worker_kills + [TRIAL_DRIVER_KILL, TUNE_DRIVER_KILL]
    if test_servers:
        kinds += [S3_OUTAGE, MLFLOW_RESTART]
    rng.shuffle(kinds)
    # Spread over the first 70% of the steps, so that every fault finds trials running; the
    # Tune driver's kill after the first 10% (Tune must have saved its experiment once).
    points = sorted(rng.uniform(0.1, 0.7) for _ in kinds)
    return [
        Fault(
            kind=kind,
            at_progress=round(point, 3),
            delay_s=round(rng.uniform(0.0, 0.5), 3),
            pick=rng.randrange(1_000_000),
            duration_s=outage_s if kind == S3_OUTAGE else 0.0,
        )
        for kind, point in zip(kinds, points, strict=True)
    ]
