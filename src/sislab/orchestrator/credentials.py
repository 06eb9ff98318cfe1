"""Keep S3 credentials out of Ray's runtime environments.

Ray Tune copies the driver's ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/session tokens into
the ``runtime_env`` of every trainable actor (``ray.tune.execution.class_cache``), and Ray's
runtime-env agent writes runtime envs to its log in the session folder: the secret ends up in a
file on every node. sislab never needs that copy: a local Ray started by the driver inherits the
driver's environment, and the nodes of a remote cluster read their own (instance roles, profiles,
secret files), which is where credentials belong.
"""

from __future__ import annotations

SECRET_ENV_VARS = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"}
)


def stop_tune_credential_propagation() -> None:
    """Remove the AWS secrets from the variables Tune copies into trainable runtime envs.

    Ray keeps that list as a module-level set; it is read each time a trainable class is
    registered, so this must run before ``Tuner.fit``.
    """
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = set(class_cache.ENV_VARS_TO_PROPAGATE) - SECRET_ENV_VARS
