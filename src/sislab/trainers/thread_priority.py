"""Background threads of a training process give way to its training step (Linux).

A trial's Train worker runs, beside the thread that trains, threads that send what the loop
queued: the MLflow sender (metrics, the epoch's sample grid, artifacts). Their work comes in
bursts at the epoch's end, so it lands on the next epoch's first steps; on a machine whose
cores the step keeps busy, it takes CPU time from them. Linux gives each thread its own nice
value, so those threads run at a lower priority: under contention the scheduler gives a thread
of nice 10 about a tenth of a normal one's share (CFS weights 110 against 1024), and on an idle
core it runs as before.
"""

from __future__ import annotations

import os
import sys
import threading

# What a background thread's nice value goes up by.
BACKGROUND_NICENESS = 10
_MAX_NICE = 19


def lower_this_thread(niceness: int = BACKGROUND_NICENESS) -> bool:
    """Raise the calling thread's nice value by ``niceness`` (at most 19), not the process's.

    Raising one's own nice value needs no privilege. Threads the caller starts afterwards
    inherit it.

    Returns:
        Whether it took: False off Linux (elsewhere a nice value is the whole process's) or
        where the kernel refuses.
    """
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(_MAX_NICE, current + niceness))
    except OSError:
        return False
    return True
