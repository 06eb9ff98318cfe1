"""Checks across fields that no single pydantic field can make, as ``(path, message)`` problems.

Batch size vs workers, decay vs epochs, and the search space: every key names a spec field, and
every value a search can produce (grid/choice values, range ends) gives a valid spec.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import ValidationError

from sislab.search_spaces.dsl import parse_domain, sample_values
from sislab.spec.models import SMIS_METHODS, SMIS_METRICS
from sislab.spec.overrides import apply_overrides
from sislab.spec.problems import (
    Path,
    Problem,
    did_you_mean,
    dotted,
    field_names,
    section_model,
    validation_problems,
)
from sislab.spec.spec import Spec

# Searching these would change what the spec is, not one of its settings.
NOT_SEARCHABLE = ("name", "method", "search")


def _touches(path: Path, skip: frozenset[Path]) -> bool:
    return any(path[: len(s)] == s or s[: len(path)] == path for s in skip)


def cross_field_problems(spec: Spec, skip: frozenset[Path] = frozenset()) -> list[Problem]:
    """Problems between fields of ``spec`` (search space excluded).

    Args:
        spec: The validated spec.
        skip: Paths whose values are unreliable (already reported); checks touching them are
            left out.
    """
    problems: list[Problem] = []
    batch, workers = spec.train.batch_size, spec.resources.num_workers
    divisible_paths = [("train", "batch_size"), ("resources", "num_workers")]
    if batch % workers and not any(_touches(p, skip) for p in divisible_paths):
        lower, upper = batch - batch % workers, batch - batch % workers + workers
        nearby = f"{lower} or {upper}" if lower else f"{upper}"
        problems.append(
            (
                ("train", "batch_size"),
                f"train.batch_size={batch} is not divisible by resources.num_workers={workers} "
                f"(each worker gets batch_size / num_workers); use a multiple of {workers} "
                f"such as {nearby}, or change resources.num_workers",
            )
        )
    problems += _accumulation_problems(spec, skip)
    decay, epochs = spec.train.lr_decay_epochs, spec.train.epochs
    decay_paths = [("train", "lr_decay_epochs"), ("train", "epochs")]
    if decay is not None and decay > epochs and not any(_touches(p, skip) for p in decay_paths):
        problems.append(
            (
                ("train", "lr_decay_epochs"),
                f"train.lr_decay_epochs={decay} exceeds train.epochs={epochs}; "
                f"use at most {epochs} (the decay covers the last lr_decay_epochs epochs)",
            )
        )
    problems += _smis_metric_problems(spec, skip)
    return problems


def _accumulation_problems(spec: Spec, skip: frozenset[Path]) -> list[Problem]:
    """Micro-batches must split each worker's batch evenly; auto on CPU needs a memory budget."""
    train, resources = spec.train, spec.resources
    paths = [("train", "batch_size"), ("resources", "num_workers"), ("train", "micro_batch_size"),
             ("train", "grad_accumulation")]  # fmt: skip
    if any(_touches(p, skip) for p in paths) or train.batch_size % resources.num_workers:
        return []  # the batch/worker problem is reported on its own
    per_worker, micro = train.batch_size // resources.num_workers, train.micro_batch_size
    if micro is not None and train.grad_accumulation != 1:
        return [(("train", "grad_accumulation"),
                 f"train.grad_accumulation={train.grad_accumulation} and train.micro_batch_size="
                 f"{micro} both set the accumulation; keep one (micro_batch_size {micro} means "
                 f"{per_worker} / {micro} micro-batches per worker)")]  # fmt: skip

    def uneven(field: str, value: int) -> list[Problem]:
        # `value` (a micro-batch size, or a count of micro-batches) does not divide the worker batch.
        fits = [k for k in range(1, per_worker + 1) if per_worker % k == 0 and k <= value]
        return [(("train", field),
                 f"train.batch_size={train.batch_size} is not divisible by resources.num_workers x "
                 f"train.{field} = {resources.num_workers} x {value}: each worker's "
                 f"{per_worker} images must split into equal micro-batches; use a "
                 f"{field} dividing {per_worker}, such as {fits[-1]}, or change "
                 f"train.batch_size")]  # fmt: skip

    if isinstance(micro, int) and per_worker % micro:
        return uneven("micro_batch_size", micro)
    if per_worker % train.grad_accumulation:
        return uneven("grad_accumulation", train.grad_accumulation)
    if micro == "auto" and not resources.use_gpu and resources.memory_per_worker_mb is None:
        return [(("train", "micro_batch_size"),
                 "train.micro_batch_size: auto on CPU workers fits the micro-batch into "
                 "resources.memory_per_worker_mb, which is not set; set it (e.g. 4000), use "
                 "resources.use_gpu: true, or give micro_batch_size a number")]  # fmt: skip
    return []


def _smis_metric_problems(spec: Spec, skip: frozenset[Path]) -> list[Problem]:
    """mCSD/mOCD resample one class's latent: a method without per-class latents has none."""
    wanted = [m for m in spec.eval.metrics if m in SMIS_METRICS]
    methods = list(spec.search.methods) or [spec.method]
    others = [m for m in methods if m not in SMIS_METHODS]
    problems: list[Problem] = []
    if not others:
        return problems
    if wanted and not _touches(("eval", "metrics"), skip):
        problems.append(
            (
                ("eval", "metrics"),
                f"eval.metrics {wanted} need per-class latents, which method {others[0]!r} does "
                f"not have; remove {' and '.join(wanted)} from eval.metrics, or use method "
                f"{' / '.join(SMIS_METHODS)} (its variants are GroupDNet's baselines)",
            )
        )
    # The offline smis preset is only ever satisfied by `sislab eval smis`, on a GroupDNet.
    if spec.eval.protocol == "smis-deepfashion" and not _touches(("eval", "protocol"), skip):
        problems.append(
            (
                ("eval", "protocol"),
                f"eval.protocol smis-deepfashion is evaluated by `sislab eval smis`, which needs "
                f"per-class latents that method {others[0]!r} does not have; drop eval.protocol "
                f"or use method {' / '.join(SMIS_METHODS)}",
            )
        )
    return problems


def all_field_paths(method: str) -> list[str]:
    """Every dotted field path of a spec with ``method`` (sections and leaves)."""
    out: list[str] = []

    def walk(prefix: Path) -> None:
        for name in field_names(Spec, prefix, method):
            out.append(dotted((*prefix, name)))
            walk((*prefix, name))

    walk(())
    return out


def search_key_problem(key: str, method: str) -> str | None:
    """Why the dotted ``key`` names no searchable field of a ``method`` spec, or None."""
    parts = tuple(key.split("."))
    if parts[0] in NOT_SEARCHABLE or parts[:2] == ("model", "method"):
        return f"{key} cannot be searched: one spec is one method and one search"
    for depth, part in enumerate(parts):
        prefix = parts[:depth]
        model = section_model(Spec, prefix, method)
        if model is None:
            parent = section_model(Spec, prefix[:-1], method)
            annotation = parent.model_fields[prefix[-1]].annotation if parent else None
            if typing.get_origin(annotation) is dict:
                return None  # e.g. weights.paths.vgg19: keys of a mapping field are free
            return f"{dotted(prefix)} is a value, not a section"
        fields = list(model.model_fields)
        if part not in fields:
            hint = did_you_mean(key, all_field_paths(method))
            section = f"{dotted(prefix)} ({method})" if prefix == ("model",) else dotted(prefix)
            where = "the spec" if not prefix else section
            return f"unknown field; {hint}fields of {where}: {', '.join(fields)}"
    return None


def _override_problems(spec: Spec, key: str, value: Any) -> list[Problem]:
    data = apply_overrides(spec.model_dump(), {key: value})
    try:
        return cross_field_problems(Spec.model_validate(data))
    except ValidationError as exc:
        return validation_problems(exc, Spec, spec.method)


def domain_value_problems(
    spec: Spec, key: str, raw: Any, path: Path, known: set[Problem]
) -> list[Problem]:
    """Problems, at ``path``, of the values a domain can give ``key`` (grid/choice values, range
    ends); problems the spec has anyway (``known``) are reported at their own field instead."""
    problems: list[Problem] = []
    for value in sample_values(parse_domain(raw)):
        for where, message in _override_problems(spec, key, value):
            if (where, message) not in known:
                problems.append((path, f"value {value!r} is invalid: {dotted(where)}: {message}"))
    return problems


def search_problems(spec: Spec, skip: frozenset[Path] = frozenset()) -> list[Problem]:
    """Problems of ``spec.search.space``, each at its key's path ``("search", "space", key)``.

    Args:
        spec: The validated spec (domain syntax is already checked by ``SearchSpec``).
        skip: Paths whose values are unreliable; search keys touching them are left out.
    """
    # Imported here: it validates configurations with this module's cross-field checks.
    from sislab.search_spaces.validate import extended_search_problems

    problems: list[Problem] = []
    if not _touches(("search",), skip):
        problems += extended_search_problems(spec)
    if spec.search.methods or spec.search.suite:
        return problems  # every configuration was checked against its own method above
    # Problems the spec has anyway are reported once, at their own field, not per search value.
    known = set(cross_field_problems(spec))
    for key, raw in spec.search.space.items():
        path = ("search", "space", key)
        if _touches(path, skip) or (isinstance(raw, dict) and "when" in raw):
            continue  # conditional entries: checked per configuration above
        reason = search_key_problem(key, spec.method)
        if reason is not None:
            problems.append((path, reason))
            continue
        if _touches(tuple(key.split(".")), skip):
            continue
        problems += domain_value_problems(spec, key, raw, path, known)
    return problems


def metric_problems(spec: Spec) -> list[Problem]:
    """A searched ``eval/<name>`` metric that the spec's evaluation never computes."""
    metrics = spec.search.metric if isinstance(spec.search.metric, list) else [spec.search.metric]
    computed = set(spec.eval.metrics) | ({"kid_std"} if "kid" in spec.eval.metrics else set())
    computed |= {"epoch"} if spec.eval.metrics else set()
    problems: list[Problem] = []
    for metric in metrics:
        name = metric.split("/", 1)[1] if metric.startswith(("eval/", "best/")) else None
        if name is not None and name not in computed:
            problems.append(
                (
                    ("search", "metric"),
                    f"{metric} is never reported: eval.metrics is {spec.eval.metrics}; add "
                    f"{name} to eval.metrics or search another metric",
                )
            )
    return problems


def pbt_mutable(key: str) -> bool:
    """Whether PBT may change ``key`` mid-training: learning rates and loss weights.

    A checkpoint trained under one value loads under another (no tensor changes shape): the
    procedures read loss weights at every step, and a restore rebases the optimisers' learning
    rates on the spec's (``trainers.checkpoint.rebase_hyperparameters``).
    """
    parts = key.split(".")
    if key in ("train.lr_g", "train.lr_d") or (parts[0] == "losses" and len(parts) == 2):
        return True
    return parts[0] == "model" and len(parts) == 2 and parts[1].endswith("_weight")


def pbt_problems(spec: Spec) -> list[Problem]:
    """Problems of ``search.scheduler.pbt``: what it mutates, and how its interval meets the
    checkpoints, evaluations and search it depends on."""
    pbt = spec.search.scheduler.pbt
    if pbt is None:
        return []
    here = ("search", "scheduler", "pbt")
    train = spec.train
    problems: list[Problem] = []
    if spec.search.algorithm == "optuna" or isinstance(spec.search.metric, list):
        problems.append(
            (
                ("search", "algorithm"),
                "PBT picks the next configurations itself (Ray refuses a search algorithm with it) "
                "and optimises one metric: use algorithm grid or random and a single metric",
            )
        )
    for name in ("perturbation_interval", "burn_in_period"):
        value = getattr(pbt, name)
        if value % train.checkpoint_every_epochs:
            problems.append(
                (
                    (*here, name),
                    f"{value} is not a multiple of train.checkpoint_every_epochs "
                    f"({train.checkpoint_every_epochs}): trials are cloned at perturbation "
                    "epochs, and only an epoch with a checkpoint can be cloned",
                )
            )
    if pbt.burn_in_period + pbt.perturbation_interval >= train.epochs:
        problems.append(
            (
                (*here, "perturbation_interval"),
                f"burn_in_period + perturbation_interval ({pbt.burn_in_period} + "
                f"{pbt.perturbation_interval}) reaches train.epochs ({train.epochs}): no trial "
                "would ever be perturbed",
            )
        )
    metric = spec.search.metric if isinstance(spec.search.metric, str) else ""
    if metric.startswith("eval/") and pbt.perturbation_interval % spec.eval.every_epochs:
        problems.append(
            (
                (*here, "perturbation_interval"),
                f"{metric} is computed every {spec.eval.every_epochs} epochs: make the interval "
                "a multiple of eval.every_epochs so that trials are ranked on fresh scores",
            )
        )
    if train.num_checkpoints_to_keep is not None and train.num_checkpoints_to_keep < 2:
        problems.append(
            (
                ("train", "num_checkpoints_to_keep"),
                "PBT needs 2 or more (or null): a donor's checkpoint must outlive its next one "
                "while another trial loads it",
            )
        )
    methods = list(spec.search.methods) or [spec.method]
    known = set(cross_field_problems(spec))
    for key, raw in pbt.mutations.items():
        path = (*here, "mutations", key)
        if not pbt_mutable(key):
            problems.append(
                (
                    path,
                    f"{key} cannot change mid-training; PBT perturbs learning rates (train.lr_g, "
                    "train.lr_d) and loss weights (losses.*, model.*_weight)",
                )
            )
            continue
        reason = next((r for m in methods if (r := search_key_problem(key, m)) is not None), None)
        if reason is not None:
            problems.append((path, reason))
            continue
        problems += domain_value_problems(spec, key, raw, path, known)
    return problems


def check_spec(spec: Spec, skip: frozenset[Path] = frozenset()) -> list[Problem]:
    """All cross-field and search-space problems of ``spec`` (empty: the spec is usable).

    Args:
        spec: The validated spec.
        skip: Paths whose values are unreliable (already reported); checks touching them are
            left out.
    """
    problems = cross_field_problems(spec, skip) + search_problems(spec, skip)
    if not _touches(("search", "metric"), skip) and not _touches(("eval",), skip):
        problems += metric_problems(spec)
    if not _touches(("search",), skip) and not _touches(("train",), skip):
        problems += pbt_problems(spec)
    return problems
