"""Preflight of a spec's resources: can one trial ever be placed?

A trial holds its driver (``trial_driver_cpus``) plus ``num_workers`` workers of
``cpus_per_worker`` CPUs (and ``gpus_per_worker`` GPUs with ``use_gpu``), as the sweep requests
them. On a fixed cluster, or this machine, a trial that asks for more than the whole cluster has
would wait forever: it is refused up front. With ``resources.autoscaling`` the cluster may grow,
so nothing is refused (``sislab run`` prints what is pending instead). ``import ray`` only in
:func:`cluster_totals` and :func:`cluster_totals_at`.
"""

from __future__ import annotations

import math
import os

from sislab.spec.problems import Problem
from sislab.spec.spec import Spec

# Ray's resource totals are floats; a request equal to the total fits.
EPSILON = 1e-9


def trial_demand(spec: Spec) -> dict[str, float]:
    """CPUs and GPUs one trial holds while it runs."""
    res = spec.resources
    return {
        "CPU": res.num_workers * res.cpus_per_worker + res.trial_driver_cpus,
        "GPU": res.num_workers * res.gpus_per_worker if res.use_gpu else 0.0,
    }


def local_totals(num_cpus: int | None = None) -> dict[str, float]:
    """What a local Ray started here would have: ``num_cpus`` (default: every CPU) and the
    visible CUDA GPUs."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"CPU": float(num_cpus or os.cpu_count() or 1), "GPU": float(gpus)}


def cluster_totals() -> dict[str, float]:
    """The connected Ray cluster's total CPUs and GPUs (Ray must be initialised)."""
    import ray

    totals = ray.cluster_resources()
    return {"CPU": float(totals.get("CPU", 0.0)), "GPU": float(totals.get("GPU", 0.0))}


def cluster_totals_at(address: str) -> dict[str, float]:
    """The CPUs and GPUs of the Ray cluster at ``address`` (``sislab validate --address``):
    connects as a driver, reads them, and leaves."""
    import ray

    if ray.is_initialized():  # this process is already a driver (its cluster is the one)
        return cluster_totals()
    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        return cluster_totals()
    finally:
        ray.shutdown()


def _number(value: float) -> str:
    return f"{value:g}"


def resource_problems(spec: Spec, totals: dict[str, float], where: str) -> list[Problem]:
    """Problems of a trial that can never be placed on ``totals``.

    Args:
        spec: The spec (one trial's resources; every trial asks the same).
        totals: Total ``CPU`` and ``GPU`` of the cluster (or of this machine).
        where: What ``totals`` describe, for the message (e.g. "this machine (no --address)").

    Returns:
        Nothing with ``resources.autoscaling``; else one problem per resource that does not fit.
    """
    if spec.resources.autoscaling:
        return []
    res = spec.resources
    demand = trial_demand(spec)
    problems: list[Problem] = []
    cpus = totals.get("CPU", 0.0)
    if demand["CPU"] > cpus + EPSILON:
        fit = math.floor((cpus - res.trial_driver_cpus) / res.cpus_per_worker + EPSILON)
        hint = (
            f"lower resources.num_workers to at most {fit} or resources.cpus_per_worker"
            if fit >= 1
            else "lower resources.cpus_per_worker and resources.trial_driver_cpus"
        )
        problems.append(
            (
                ("resources", "num_workers"),
                f"one trial needs {_number(demand['CPU'])} CPUs (resources.num_workers "
                f"{res.num_workers} x resources.cpus_per_worker {_number(res.cpus_per_worker)} "
                f"+ {_number(res.trial_driver_cpus)} for its driver) but {where} has "
                f"{_number(cpus)}: no trial could ever start. Fix: {hint}, or run on a larger "
                "cluster (sislab run --address), or set resources.autoscaling: true if the "
                "cluster adds nodes on demand",
            )
        )
    gpus = totals.get("GPU", 0.0)
    if demand["GPU"] > gpus + EPSILON:
        problems.append(
            (
                ("resources", "use_gpu"),
                f"one trial needs {_number(demand['GPU'])} GPUs (resources.num_workers "
                f"{res.num_workers} x resources.gpus_per_worker "
                f"{_number(res.gpus_per_worker)}) but {where} has {_number(gpus)}. Fix: lower "
                "resources.num_workers or resources.gpus_per_worker, set resources.use_gpu: "
                "false, or run on a cluster with GPUs (sislab run --address)",
            )
        )
    return problems
