"""Environment variables the sweep's driver hands to its trials' processes.

Ray Tune copies a fixed list of the driver's environment variables into the ``runtime_env`` of
every trainable actor (``ray.tune.execution.class_cache``); the Train controller and workers a
trial starts inherit that environment, on a local Ray and on a remote cluster alike. A variable
that must be in a worker's environment when the process starts (torch reads some only then) can
only get there this way.
"""

from __future__ import annotations


def propagate_to_trials(*names: str) -> None:
    """Add ``names`` to the variables Tune copies from this process into trainable runtime envs.

    Ray keeps that list as a module-level set, read each time a trainable class is registered:
    call this before ``Tuner.fit``. A variable not set in this process is not copied.
    """
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = set(class_cache.ENV_VARS_TO_PROPAGATE) | set(names)
