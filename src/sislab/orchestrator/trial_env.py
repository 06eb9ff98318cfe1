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


def set_for_trials(values: dict[str, str], replacing: tuple[str, ...] = ()) -> None:
    """Give every trainable's runtime env ``values`` (after dropping ``replacing``, what an
    earlier sweep of this process may have set), whether or not this process has them.

    For variables this process must not run with itself (``LD_PRELOAD``: it would preload into
    every program the driver starts, the local Ray cluster's included). Tune starts its runtime
    envs from a module-level dict of defaults, read like the list above: call before
    ``Tuner.fit``.
    """
    from ray.tune.execution import class_cache

    kept = {k: v for k, v in class_cache.DEFAULT_ENV_VARS.items() if k not in replacing}
    class_cache.DEFAULT_ENV_VARS = {**kept, **values}
