"""The preflight of ``sislab validate``, ``run``, ``submit`` and ``resume``: what is knowable before
a job starts, as ``(field path, message)`` problems located in the spec file.

For every trial configuration of the sweep (grid points, methods, the ends of sampled ranges; each
distinct network configuration once): the networks build and run at the spec's resolution
(``preflight_models``); the dataset's manifest is readable and fits the spec (``preflight_data``);
a trial can ever be placed (``preflight_resources``). Imports no Ray.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path as FilePath

from sislab.cluster.address import is_local_address
from sislab.errors import DataError, SislabError, SpecError
from sislab.models.geometry import DatasetGeometry
from sislab.models.presets import (
    auto_reason,
    dataset_name,
    preset_in_use,
    with_resolved_preset,
)
from sislab.orchestrator import preflight_data, preflight_models, preflight_resources
from sislab.orchestrator.preflight_data import DatasetFacts
from sislab.orchestrator.preflight_models import ModelCheck
from sislab.recipes.apply import apply_recipe, explicit_fields
from sislab.search_spaces.space import METHOD_KEY, SearchSpace, validation_configurations
from sislab.search_spaces.trial_spec import trial_spec
from sislab.search_spaces.validate import MAX_CHECKED, space_of
from sislab.spec.problems import Path, Problem
from sislab.spec.spec import Spec

logger = logging.getLogger(__name__)

# Searched keys that change the networks' shapes, most specific first: a failing network is
# reported at the first of them that its configuration sets.
SHAPE_KEYS = ("dataset.image_size", "model.", "train.batch_size", "resources.num_workers")


@dataclass(frozen=True)
class PreflightReport:
    """What the preflight found.

    Args:
        problems: ``(field path, message)`` pairs; empty: the sweep can start.
        notes: Lines to print either way (the preset in use, what was not checked).
        spec: The spec with ``preset: auto`` resolved for its dataset (what the sweep logs).
        num_model_checks: Distinct network configurations built and run.
    """

    problems: list[Problem]
    notes: list[str] = field(default_factory=list)
    spec: Spec | None = None
    num_model_checks: int = 0


def trial_configurations(
    spec: Spec, geometry: DatasetGeometry | None = None
) -> list[tuple[dict, Spec]]:
    """Every configuration validation covers, with its trial spec (invalid ones left out: the
    spec's own validation reports them); with ``geometry``, switched methods' presets resolved
    as the trials resolve them."""
    space = space_of(spec)
    configs, _ = validation_configurations(space, MAX_CHECKED)
    out = []
    for config in configs or [{}]:
        try:
            out.append((config, trial_spec(spec, config, geometry)))
        except SislabError as exc:
            logger.debug("preflight: configuration %s is invalid: %s", config, exc)
    return out


def _search_path(space: SearchSpace, config: dict, key: str) -> Path:
    method = config.get(METHOD_KEY)
    for param in space.params:
        if param.key == key and (
            not param.when.get(METHOD_KEY) or method in param.when[METHOD_KEY]
        ):
            if "/" in param.name:
                return ("search", "methods", param.name.split("/")[0], key)
            return ("search", "space", key)
    return tuple(key.split("."))


def _shape_path(space: SearchSpace, config: dict) -> Path:
    for prefix in SHAPE_KEYS:
        for key in config:
            if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
                return _search_path(space, config, key)
    return ("dataset", "image_size")


def model_check(spec: Spec, facts: DatasetFacts) -> ModelCheck:
    """The network configuration of one trial spec."""
    geometry = facts.geometry(spec.dataset.image_size)
    per_worker = max(1, spec.train.batch_size // spec.resources.num_workers)
    synced = spec.train.sync_bn and getattr(spec.model, "use_sync_bn", True)
    batch = per_worker * (spec.resources.num_workers if synced else 1)
    return ModelCheck(spec.method, spec.model, geometry, batch)


def _preset_note(spec: Spec, config: dict, trial: Spec, geometry: DatasetGeometry) -> str | None:
    """``METHOD: preset P (auto: why)`` for a trial whose preset followed the dataset."""
    if not hasattr(trial.model, "preset") or "model.preset" in config:
        return None
    switched = config.get(METHOD_KEY, spec.method) != spec.method
    if not switched and getattr(spec.model, "preset", None) != "auto":
        return None  # named in the spec file
    preset = preset_in_use(trial.model, geometry) or "none"
    return f"{trial.method}: preset {preset} (auto: {auto_reason(trial.model, geometry)})"


def model_problems(
    spec: Spec, facts: DatasetFacts, trials: list[tuple[dict, Spec]]
) -> tuple[list[Problem], list[str], int]:
    """Problems of every distinct network configuration, the presets in use, and the count.

    Args:
        spec: The spec as the user wrote it (``preset: auto`` unresolved).
        facts: The dataset's.
        trials: The trial configurations, presets resolved.

    Returns:
        Problems, notes (``METHOD: preset P``) and the number of configurations built.
    """
    space = space_of(spec)
    seen: dict[tuple, str | None] = {}
    problems: list[Problem] = []
    notes: list[str] = []
    for config, trial in trials:
        check = model_check(trial, facts)
        key = check.key()
        if key not in seen:
            failure = preflight_models.shape_failure(check)
            seen[key] = (
                None if failure is None else preflight_models.failure_message(check, failure)
            )
            note = _preset_note(spec, config, trial, check.geometry)
            if note is not None and note not in notes:
                notes.append(note)
            message = seen[key]
            if message is not None:
                problems.append((_shape_path(space, config), message))
    return problems, notes, len(seen)


def _dataset(spec: Spec, offline: bool, read_local: bool) -> tuple[DatasetFacts | None, list]:
    uri = spec.dataset.uri
    if offline and uri.startswith("s3://"):
        return None, [f"dataset: {uri} not read (--offline): networks and splits unchecked"]
    if not read_local and "://" not in uri:
        return None, [f"dataset: {uri} is read on the cluster: networks and splits unchecked"]
    try:
        return preflight_data.dataset_facts(spec), []
    except (DataError, SpecError) as exc:
        return None, [(("dataset", "uri"), str(exc).replace("\n  Fix: ", "; fix: "))]
    except (OSError, ValueError) as exc:  # e.g. a URI pyarrow cannot parse
        return None, [(("dataset", "uri"), f"cannot read {uri}: {exc}; check dataset.uri")]


def preflight(
    spec: Spec,
    *,
    offline: bool = False,
    read_local_dataset: bool = True,
    totals: dict[str, float] | None = None,
    where: str = "the cluster",
) -> PreflightReport:
    """Check what is knowable before a sweep starts.

    Args:
        spec: A spec that passed validation.
        offline: Skip network reads (an ``s3://`` manifest).
        read_local_dataset: Read a local dataset folder (False for ``sislab submit``: the path is
            the cluster's).
        totals: Total ``CPU``/``GPU`` to place a trial on (None: not checked).
        where: What ``totals`` describe, for messages.

    Returns:
        The report; ``problems`` empty when the sweep can start.
    """
    facts, found = _dataset(spec, offline, read_local_dataset)
    problems: list[Problem] = [p for p in found if isinstance(p, tuple)]
    notes = [n for n in found if isinstance(n, str)]
    num_checks = 0
    resolved, geometry = spec, None
    if facts is not None:
        # The spec as loaded knows which model fields the user set: resolve `preset: auto` here.
        geometry = facts.geometry(spec.dataset.image_size)
        resolved = spec.model_copy(update={"model": with_resolved_preset(spec.model, geometry)})
    trials = trial_configurations(resolved, geometry)
    if facts is not None:
        trials, recipe_notes, recipe_problems = _with_recipe(spec, trials, geometry)
        notes += recipe_notes
        problems += [p for p in recipe_problems if p not in problems]
        for _, trial in trials:
            for problem in preflight_data.split_problems(trial, facts):
                if problem not in problems:
                    problems.append(problem)
            for problem in preflight_data.model_fit_problems(trial, facts):
                if problem not in problems:
                    problems.append(problem)
            notes += [n for n in preflight_data.data_notes(trial, facts) if n not in notes]
        found_models, preset_notes, num_checks = model_problems(spec, facts, trials)
        problems += found_models
        notes += preset_notes
    if totals is not None:
        for _, trial in trials:
            for problem in preflight_resources.resource_problems(trial, totals, where):
                if problem not in problems:
                    problems.append(problem)
    return PreflightReport(problems, notes, resolved, num_checks)


def _at(data: dict, dotted_key: str):
    for part in dotted_key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _with_recipe(
    spec: Spec, trials: list[tuple[dict, Spec]], geometry: DatasetGeometry
) -> tuple[list[tuple[dict, Spec]], list[str], list[Problem]]:
    """The trials with their ``train.recipe`` applied (what they will train with), a note per
    method on the values the recipe changes, and the configurations the recipe makes invalid."""
    explicit = explicit_fields(spec)  # the spec as loaded knows which fields the user set
    dataset = dataset_name(geometry)
    out, notes, problems = [], [], []
    for config, trial in trials:
        try:
            applied, record = apply_recipe(trial, dataset, explicit, config)
        except SislabError as exc:
            problems.append((("train", "recipe"), f"{config or 'the spec'}: {exc}"))
            continue
        out.append((config, applied))
        before, after = trial.model_dump(mode="json"), applied.model_dump(mode="json")
        changed = [
            f"{key}={entry['value']}"
            for key, entry in record["values"].items()
            if entry["from"] == "recipe" and _at(before, key) != _at(after, key)
        ]
        note = (
            f"{record['method']}: recipe {record['recipe']} ({record['table']} table, "
            f"`sislab recipe show {record['method']}`) sets {', '.join(changed)}"
        )
        if changed and note not in notes:
            notes.append(note)
    return out, notes, problems


def local_where(num_cpus: int | None) -> str:
    """How messages name this machine's resources."""
    given = f"--num-cpus {num_cpus}" if num_cpus else "all of this machine's CPUs"
    return f"a local Ray on this machine ({given}; no --address given)"


def check_before_run(
    spec: Spec,
    spec_path: str | FilePath,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    read_local_dataset: bool = True,
    echo=print,
) -> Spec:
    """The preflight of ``sislab run``/``submit``/``resume``, before Ray starts.

    Resources are checked here for a local Ray (``address`` None); a cluster's are checked once
    connected (:func:`sislab.orchestrator.preflight_resources.resource_problems`).

    Returns:
        The spec with ``preset: auto`` resolved (what the sweep records).

    Raises:
        SpecError: Any problem; ``problems`` holds the ``FILE:LINE: field: message`` lines.
    """
    from sislab.spec.loader import locate_problems

    # A new local Ray gets this machine; with RAY_ADDRESS set, ray.init() joins that cluster.
    is_local = is_local_address(address) and not os.environ.get("RAY_ADDRESS")
    totals = preflight_resources.local_totals(num_cpus) if is_local else None
    report = preflight(
        spec, read_local_dataset=read_local_dataset, totals=totals, where=local_where(num_cpus)
    )
    for note in report.notes:
        echo(f"preflight: {note}")
    if report.problems:
        lines = locate_problems(spec_path, report.problems)
        raise SpecError(
            f"the sweep cannot run as specified ({len(lines)} problem"
            f"{'s' if len(lines) != 1 else ''}):\n" + "\n".join(f"  {line}" for line in lines),
            fix="Correct the fields named above; `sislab validate` lists them.",
            problems=lines,
        )
    return report.spec or spec


def check_cluster_resources(spec: Spec, spec_path: str | FilePath) -> None:
    """On a connected cluster (``sislab run --address``): refuse a trial that can never be placed
    (nothing is refused with ``resources.autoscaling``). Runs on the Tune driver.

    Raises:
        SpecError: The lines name ``resources.num_workers``/``use_gpu`` and the fix.
    """
    from sislab.spec.loader import locate_problems

    totals = preflight_resources.cluster_totals()
    problems = preflight_resources.resource_problems(spec, totals, "the Ray cluster")
    if problems:
        lines = locate_problems(spec_path, problems)
        raise SpecError(
            "the cluster can never place a trial:\n" + "\n".join(f"  {line}" for line in lines),
            fix="Correct the fields named above.",
            problems=lines,
        )
