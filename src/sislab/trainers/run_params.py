"""Which spec fields become MLflow params, with which value, and which go to a JSON artifact.

A param is a field that can change a result (method, model, training, losses, evaluation, data):
MLflow shows it as a column and compares on it, so it holds the value the run actually used (a
loss that is off is 0, ``gpus_per_worker`` is 0 without GPUs). Where a run's data comes from and
how it is kept (storage, tracking, endpoints, retries, weight files, the search itself) is
infrastructure: one JSON artifact (``config/infrastructure.json``), never 40 param columns. Pure
functions, no MLflow.
"""

from __future__ import annotations

import json
from typing import Any

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
INFRASTRUCTURE_ARTIFACT = "config/infrastructure.json"
# Dotted spec fields (or whole sections) that do not change what a run computes.
INFRASTRUCTURE = (
    "name",
    "model.method",  # the same as ``method``
    "dataset.endpoint_override",
    "dataset.region",
    "dataset.read_retries",
    "dataset.retry_backoff_s",
    "dataset.read_cpus",
    "dataset.cache",  # the same rows, decoded once instead of every epoch
    "train.checkpoint_every_epochs",
    "train.num_checkpoints_to_keep",
    "train.log_every_iters",
    "train.max_failures",
    "eval.batch_size",
    "eval.target",  # the goal the cost estimate times, not part of what a trial computes
    # Prices: on the parent run only (orchestrator.cost); a trial's cost.device* are its own.
    "cost.gpu_hour",
    "cost.cpu_hour",
    "cost.currency",
    "search",
    "resources.cpus_per_worker",
    "resources.trial_driver_cpus",
    "resources.placement_strategy",
    "resources.accelerator_type",
    "resources.worker_resources",
    "resources.memory_per_worker_mb",  # a budget: the micro-batch it picks is logged (probe.*)
    "resources.autoscaling",
    "tracking",
    "storage",
    "weights",
)
# Run tags (set by the procedure) that say a loss is off, and the loss weight they make 0.
LOSS_SWITCH_TAGS = {"sislab.perceptual_loss": "losses.perceptual"}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists and empty mappings stay values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def is_infrastructure(key: str) -> bool:
    """Whether the dotted field ``key`` is infrastructure (not a param)."""
    return any(key == p or key.startswith(p + ".") for p in INFRASTRUCTURE)


def effective_values(spec_data: dict[str, Any], notes: dict[str, str]) -> dict[str, str]:
    """Fields whose configured value the run does not use -> why (the value logged is 0).

    Args:
        spec_data: The trial's resolved spec as JSON data.
        notes: The procedure's run tags (``sislab.perceptual_loss: off: no vgg19 weights ...``).
    """
    why: dict[str, str] = {}
    for tag, field in LOSS_SWITCH_TAGS.items():
        if notes.get(tag, "").startswith("off"):
            why[field] = notes[tag]
    if spec_data.get("model", {}).get("use_vae") is False:
        why["losses.kl"] = "off (model.use_vae is false: no encoder, no KL term)"
    if not spec_data.get("resources", {}).get("use_gpu", False):
        why["resources.gpus_per_worker"] = "0 (resources.use_gpu is false)"
    return why


def split_params(
    spec_data: dict[str, Any], notes: dict[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The run's params (effective values), its infrastructure fields, and why values changed.

    Returns:
        ``(params, infrastructure, changed)``: dotted key -> value for each, and
        ``changed``: dotted key -> why the logged value differs from the configured one.
    """
    changed = effective_values(spec_data, notes or {})
    params: dict[str, Any] = {}
    infrastructure: dict[str, Any] = {}
    for key, value in sorted(flatten(spec_data).items()):
        if is_infrastructure(key):
            infrastructure[key] = value
        else:
            params[key] = 0 if key in changed else value
    return params, infrastructure, changed


def param_text(value: Any) -> str:
    """A param value as MLflow stores it (JSON for lists and mappings), truncated to the limit."""
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text[:MAX_PARAM_CHARS]


def shared_params(spec_data: dict[str, Any], varied: set[str]) -> dict[str, Any]:
    """The params every trial of a sweep shares: a trial's params less the varied fields.

    Args:
        spec_data: The sweep's spec as JSON data.
        varied: Dotted fields the search sets (``method`` varies every ``model.*`` field too).
    """
    prefixes = set(varied) | ({"model"} if "method" in varied else set())
    params, _, _ = split_params(spec_data)
    return {
        k: v
        for k, v in params.items()
        if not any(k == p or k.startswith(p + ".") for p in prefixes)
    }
