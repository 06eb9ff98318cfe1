"""What must hold after a chaos run, checked against what the sweep left behind: the MLflow runs
and metric histories, the Train checkpoints in the sweep's storage, and for synthetic data an
unfaulted reference (``chaos.reference``).

Each check is one row of the table ``sislab chaos`` prints: its name, whether it held, and the
figures behind it.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch
from mlflow.tracking import MlflowClient

from sislab.orchestrator.run_dir import RunDir
from sislab.spec.spec import Spec
from sislab.trainers.checkpoint import CheckpointMeta, load_checkpoint
from sislab.trainers.mlflow_tracker import REDONE_STEPS_KEY

# Weights of a restarted trial and of its unfaulted reference: the same operations in the same
# order (CPU, gloo), so equal to float rounding; one epoch of training moves them far more.
WEIGHT_ATOL = 1e-5
# Trained tensors (not BN counters or spectral-norm vectors), for the scale of one epoch's change.
TRAINED_SUFFIXES = ("weight", "bias", "weight_orig")
SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's record of a run's checkpoints
WEIGHT_RTOL = 1e-4


@dataclass
class Check:
    """One invariant: its name, whether it held, and what was measured."""

    name: str
    ok: bool
    detail: str


@dataclass
class Figures:
    """The numbers of a chaos run that its note reports."""

    trials: int = 0
    steps_logged: int = 0
    steps_redone: int = 0
    duplicates: int = 0
    gaps: int = 0
    checkpoints: int = 0
    unregistered: int = 0  # checkpoint folders Ray Train never registered (upload cut short)
    max_weight_diff: float | None = None
    min_epoch_change: float | None = None  # how far one epoch moves the weights (the scale)
    epochs_rows_checked: int = 0
    problems: list[str] = field(default_factory=list)


def _trial_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    return client.search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    )


def _checkpoints(fs: pafs.FileSystem, storage: str, trial_id: str) -> tuple[list[str], int]:
    """Train checkpoint folders of a trial (all its Train runs) in the sweep's storage, and how
    many folders are not checkpoints: uploads a killed worker left half done, which Ray Train
    never registered (its ``checkpoint_manager_snapshot.json`` does not name them)."""
    folders, unregistered = [], 0
    for run in fs.get_file_info(pafs.FileSelector(storage)):
        if run.type != pafs.FileType.Directory or not run.base_name.startswith(f"train-{trial_id}"):
            continue
        try:
            with fs.open_input_stream(f"{run.path}/{SNAPSHOT}") as f:
                snapshot = f.read().decode()
        except (OSError, FileNotFoundError):
            snapshot = ""
        for entry in fs.get_file_info(pafs.FileSelector(run.path)):
            if entry.type == pafs.FileType.Directory and entry.base_name.startswith("checkpoint_"):
                if entry.base_name in snapshot:
                    folders.append(entry.path)
                else:
                    unregistered += 1
    return sorted(folders), unregistered


def _fetch(fs: pafs.FileSystem, folder: str, into: Path) -> Path:
    local = into / folder.strip("/").replace("/", "__")
    local.mkdir(parents=True)
    pafs.copy_files(folder, str(local), source_filesystem=fs)
    return local


def _split_keys(spec: Spec) -> list[str]:
    from sislab.datasets.manifest import load_manifest
    from sislab.datasets.storage import StorageOptions, resolve

    location = resolve(
        spec.dataset.uri, StorageOptions(spec.dataset.endpoint_override, spec.dataset.region)
    )
    keys: list[str] = []
    for shard in load_manifest(location).splits[spec.dataset.train_split].shards:
        table = pq.read_table(location.path(shard.path), filesystem=location.fs, columns=["key"])
        keys += table.column("key").to_pylist()
    return keys


def _history_checks(client: MlflowClient, run, final: CheckpointMeta, figures: Figures) -> None:
    """Each key: every step at most once; the loss keys: every logged step from the first to
    the trial's last iteration."""
    spec = Spec.model_validate(final.config)
    every = spec.train.log_every_iters
    run_id = run.info.run_id
    for key in run.data.metrics:
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        dup = len(steps) - len(set(steps))
        figures.duplicates += dup
        if dup:
            figures.problems.append(f"{run.info.run_name}: {key} logs {dup} step(s) twice")
        if key == REDONE_STEPS_KEY:
            figures.steps_redone += int(
                sum(m.value for m in client.get_metric_history(run_id, key))
            )
        if key.startswith("train/loss"):
            expected = set(range(every, final.iteration + 1, every))
            missing = sorted(expected - set(steps))
            figures.gaps += len(missing)
            figures.steps_logged += len(set(steps))
            if missing:
                figures.problems.append(f"{run.info.run_name}: {key} misses steps {missing[:10]}")


def _rows_checks(client: MlflowClient, run, spec: Spec, figures: Figures) -> bool:
    """Parquet data: each epoch's ``data/epoch_rows`` and key digest are the whole split's."""
    from sislab.trainers.build import per_worker_batch
    from sislab.trainers.worker import key_digest

    keys = _split_keys(spec)
    world, batch = spec.resources.num_workers, per_worker_batch(spec)
    per_epoch = len(keys) // world // batch
    if spec.train.max_iters_per_epoch is not None:
        per_epoch = min(per_epoch, spec.train.max_iters_per_epoch)
    whole = per_epoch * world * batch == len(keys)
    rows = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "data/epoch_rows")}
    digests = client.get_metric_history(run.info.run_id, "data/epoch_key_digest")
    ok = len(rows) == spec.train.epochs and all(
        v == per_epoch * world * batch for v in rows.values()
    )
    if whole:  # the epoch covers the split: every key exactly once
        ok = ok and all(m.value == key_digest(keys) for m in digests)
    figures.epochs_rows_checked += len(rows)
    if not ok:
        figures.problems.append(f"{run.info.run_name}: epochs' rows {sorted(rows.items())}")
    return ok


def check_invariants(
    run_dir: RunDir, spec: Spec, expected_trials: int, storage: tuple[str, Any]
) -> tuple[list[Check], Figures]:
    """Check a finished chaos sweep; the table rows and the figures.

    Args:
        run_dir: The sweep's run folder.
        spec: The sweep's spec.
        expected_trials: Trials the spec's search makes.
        storage: The sweep's storage path and pyarrow filesystem (None: local).
    """
    from sislab.chaos.reference import reference_state

    figures = Figures()
    checks: list[Check] = []
    state = run_dir.load_state()
    client = MlflowClient(state.tracking_uri)
    runs = _trial_runs(client, state.experiment_id, state.parent_run_id)
    counts = Counter(r.data.tags.get("sislab.trial_id") for r in runs)
    statuses = Counter(r.info.status for r in runs)
    figures.trials = len(counts)
    parent = client.get_run(state.parent_run_id)
    once = (
        len(runs) == expected_trials
        and set(counts.values()) == {1}
        and statuses == {"FINISHED": expected_trials}
        and state.status == "FINISHED"
        and parent.info.status == "FINISHED"
    )
    checks.append(
        Check(
            "every trial finished exactly once under the original parent run",
            once,
            f"{len(runs)} trial runs of {expected_trials}, {dict(statuses)}, parent "
            f"{state.parent_run_id[:8]} {parent.info.status}"
            + (" (resumed)" if parent.data.tags.get("sislab.resumed") else ""),
        )
    )
    path, fs = storage
    fs = fs or pafs.LocalFileSystem()
    loaded, broken = 0, []
    diffs: list[float] = []
    epoch_moves: list[float] = []
    rows_ok = weights_ok = True
    parquet_trials = 0
    with tempfile.TemporaryDirectory(prefix="sislab-chaos-") as tmp:
        for run in runs:
            trial_id = run.data.tags.get("sislab.trial_id")
            finals: list[tuple[CheckpointMeta, dict]] = []
            folders, unregistered = _checkpoints(fs, path, trial_id)
            figures.unregistered += unregistered
            for folder in folders:
                try:
                    meta, weights = load_checkpoint(_fetch(fs, folder, Path(tmp)), spec.method)
                except Exception as exc:  # any failure to load or verify is the finding
                    broken.append(f"{folder}: {exc}")
                    continue
                loaded += 1
                finals.append((meta, weights))
            if not finals:
                figures.problems.append(f"trial {trial_id}: no checkpoint loads")
                continue
            finals.sort(key=lambda mw: (mw[0].epoch, mw[0].iteration))
            final, weights = finals[-1]
            _history_checks(client, run, final, figures)
            trial_spec = Spec.model_validate(final.config)
            if trial_spec.dataset.uri.startswith("synthetic://"):
                ref = reference_state(final.config)["generator"]
                got = weights["procedure"]["generator"]
                diff = max((got[k].float() - ref[k].float()).abs().max().item() for k in ref)
                diffs.append(diff)
                same = all(
                    torch.allclose(got[k].float(), ref[k].float(), WEIGHT_RTOL, WEIGHT_ATOL)
                    for k in ref
                )
                weights_ok = weights_ok and same
                if not same:
                    figures.problems.append(f"trial {trial_id}: weights differ by {diff:.3g}")
                if len(finals) > 1:  # the scale: how far the last epoch moved the weights
                    before = finals[-2][1]["procedure"]["generator"]
                    trained = [k for k in got if k.endswith(TRAINED_SUFFIXES)]
                    epoch_moves.append(
                        max((got[k] - before[k]).abs().max().item() for k in trained)
                    )
            else:
                parquet_trials += 1
                rows_ok = _rows_checks(client, run, trial_spec, figures) and rows_ok
    figures.checkpoints = loaded
    checks.append(
        Check(
            "metric histories: each step at most once, no gaps",
            figures.duplicates == 0 and figures.gaps == 0 and figures.steps_logged > 0,
            f"{figures.steps_logged} loss steps, {figures.steps_redone} steps redone, "
            f"{figures.duplicates} duplicates, {figures.gaps} gaps",
        )
    )
    checks.append(
        Check(
            "checkpoints load and pass their sha256",
            not broken and loaded > 0,
            f"{loaded} loaded, {len(broken)} broken, {figures.unregistered} unregistered "
            "folders left by cut uploads" + (f": {broken[0]}" if broken else ""),
        )
    )
    if diffs:
        figures.max_weight_diff = max(diffs)
        figures.min_epoch_change = min(epoch_moves) if epoch_moves else None
        scale = (
            f"; the last epoch alone moves them {figures.min_epoch_change:.3g}"
            if figures.min_epoch_change is not None
            else ""
        )
        checks.append(
            Check(
                "synthetic data: final weights equal the unfaulted run's",
                weights_ok,
                f"{len(diffs)} trials, max |difference| {figures.max_weight_diff:.3g}{scale}",
            )
        )
    if parquet_trials:
        checks.append(
            Check(
                "Parquet data: each epoch of each trial saw every row once",
                rows_ok,
                f"{parquet_trials} trials, {figures.epochs_rows_checked} epochs checked",
            )
        )
    return checks, figures
