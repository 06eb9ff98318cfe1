"""MLflow tracking credentials, carried in memory from the sweep driver to the Train workers.

MLflow's client reads ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (or a token) from
its own process's environment. The nodes of a remote cluster don't have the driver's environment,
and Ray's ways of giving it to them leave copies behind: runtime-env ``env_vars`` are written to the
runtime-env agent's log on every node, and ``train_loop_config`` is recorded in Ray Train's run
state (dashboard, export events). So the driver reads the credentials once, they travel inside the
worker function Ray pickles, and each worker puts them into its own environment before it opens
MLflow. They never enter a spec, a config, a param or a tag.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

# What MLflow's REST client reads for HTTP basic auth (a server run with `--app-name basic-auth`)
# and for bearer tokens; nothing else in the environment is forwarded.
TRACKING_CREDENTIAL_VARS = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
)


@dataclass(frozen=True)
class TrackingCredentials:
    """The driver's MLflow credentials (variable name, value); the values never appear in a repr.

    Args:
        values: The set ones of ``TRACKING_CREDENTIAL_VARS``, with their values.
    """

    values: tuple[tuple[str, str], ...] = field(repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TrackingCredentials | None:
        """The credentials set in ``environ`` (the driver's), or None when there are none."""
        values = tuple(
            (name, environ[name]) for name in TRACKING_CREDENTIAL_VARS if environ.get(name)
        )
        return cls(values) if values else None

    def export(self, environ: MutableMapping[str, str]) -> None:
        """Put the credentials into ``environ`` (a worker's ``os.environ``), over older values."""
        environ.update(self.values)

    def __repr__(self) -> str:
        return f"TrackingCredentials({', '.join(name for name, _ in self.values)})"


@dataclass(frozen=True, slots=True)
class WithCredentials:
    """A Train worker function that first exports the driver's tracking credentials.

    Runs in every Train worker process (Ray pickles the instance, not a config it records).

    Args:
        worker_fn: The function every Train worker runs, called with the train loop config.
        credentials: What to put into the worker's environment first.
    """

    worker_fn: Callable[[dict[str, Any]], None]
    credentials: TrackingCredentials

    def __call__(self, config: dict[str, Any]) -> None:
        self.credentials.export(os.environ)
        self.worker_fn(config)


def with_credentials(
    worker_fn: Callable[[dict[str, Any]], None], credentials: TrackingCredentials | None
) -> Callable[[dict[str, Any]], None]:
    """``worker_fn``, exporting ``credentials`` first when there are any."""
    return worker_fn if credentials is None else WithCredentials(worker_fn, credentials)
