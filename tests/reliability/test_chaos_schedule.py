"""The chaos schedule: a seed draws one schedule; faults on servers sislab does not own are left
out."""

from __future__ import annotations

from sislab.chaos.schedule import (
    NEEDS_TEST_SERVERS,
    TRIAL_DRIVER_KILL,
    TUNE_DRIVER_KILL,
    WORKER_KILL,
    draw_schedule,
)


def test_a_seed_draws_one_schedule_and_own_servers_decide_their_faults() -> None:
    full = draw_schedule(7, worker_kills=3, test_servers=True, outage_s=20.0)
    assert full == draw_schedule(7, worker_kills=3, test_servers=True, outage_s=20.0)
    assert full != draw_schedule(8, worker_kills=3, test_servers=True, outage_s=20.0)
    kinds = [f.kind for f in full]
    assert sorted(kinds) == sorted(
        [WORKER_KILL] * 3 + [TRIAL_DRIVER_KILL, TUNE_DRIVER_KILL, *NEEDS_TEST_SERVERS]
    )
    points = [f.at_progress for f in full]
    assert points == sorted(points) and points[0] >= 0.1 and points[-1] <= 0.7
    assert [f.duration_s for f in full if f.kind == "s3_outage"] == [20.0]
    # On a user's own S3 and MLflow: only the Ray processes are killed.
    own = draw_schedule(7, worker_kills=2, test_servers=False, outage_s=20.0)
    assert not {f.kind for f in own} & set(NEEDS_TEST_SERVERS)
    assert len(own) == 4
