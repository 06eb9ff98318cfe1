"""Checkpoints as data: state dicts in ``state.pt`` plus a JSON ``meta.json``; never pickled objects.

Loading uses ``torch.load(weights_only=True)``, so a checkpoint cannot execute code, and the meta
file is checked against the trial (method, format) before any tensor is touched.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from sislab.errors import CheckpointError

FORMAT_VERSION = 1
STATE_FILE = "state.pt"
META_FILE = "meta.json"
HASH_THREAD = "sislab-checkpoint-sha256"
HASH_BUFFER_BYTES = 256 * 2**20  # copies of written chunks waiting for the hashing thread
HASH_BLOCK_BYTES = 2**20  # written chunks are handed to the hashing thread in blocks of this


class CheckpointMeta(BaseModel):
    """What a checkpoint is, readable without loading tensors."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    method: str
    epoch: int  # epochs completed
    iteration: int  # optimisation steps completed (global step axis of MLflow)
    images_seen: int
    mlflow_run_id: str | None = None
    config: dict | None = None  # the trial's resolved spec, to rebuild its networks later
    eval_metrics: dict[str, float] | None = None  # the latest evaluation (eval/<name> keys)
    best: dict[str, Any] | None = None  # metric, value, epoch, uri of the best checkpoint so far
    cost: dict[str, Any] | None = None  # the trial's device time so far (trainers.cost)
    state_sha256: str | None = None  # of state.pt, checked on load (None: written before checks)
    # Metric points MLflow had not taken when the checkpoint was written (key, value, timestamp
    # ms, step): a worker resuming the same run sends them, so a crash loses none.
    unsent_metrics: list[tuple[str, float, int, int]] | None = None


class CheckpointPointer(BaseModel):
    """Where a trial's Train checkpoint lies in the sweep's storage.

    The content of the Tune checkpoint a trial reports with each Train checkpoint, and what a PBT
    exploit hands to the workers of the Train run it starts (the donor's checkpoint).

    Args:
        trial_id: Tune trial that reported it.
        run_name: Its Train run (folder under the sweep's storage).
        path: The Train checkpoint folder, in the sweep's storage filesystem.
        epoch: Epochs the checkpoint has trained.
        iteration: Iterations the checkpoint has trained.
    """

    trial_id: str
    run_name: str
    path: str
    epoch: int
    iteration: int


def rng_state() -> dict[str, Any]:
    """Snapshot of the torch, CUDA, numpy and Python generators as tensors/lists (weights-only safe)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])},
        "python": json.dumps(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generators saved by ``rng_state``."""
    torch.set_rng_state(state["torch"])
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, meta: CheckpointMeta, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts of tensors and numbers) and ``meta`` into ``folder``.

    The tensor file is written under a temporary name and renamed, so a crash never leaves a
    checkpoint that looks complete but is truncated.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (STATE_FILE + ".partial")
    meta.state_sha256 = _save_hashed(state, tmp)
    tmp.replace(folder / STATE_FILE)
    save_meta(folder, meta)
    return folder


class _HashingWriter:
    """The file ``torch.save`` writes to: each chunk goes to the file and, copied, to a second
    thread that hashes it, so that the sha256 runs beside the serialisation (hashlib releases
    the GIL) instead of reading the whole file again after it. Copies are gathered into blocks
    of at least ``HASH_BLOCK_BYTES`` before they are handed over: a state of many small tensors
    makes thousands of writes, and a hand-over per write cost more than the hash saved. At most
    ``budget`` bytes of blocks wait (one block, whatever its size, when none does)."""

    def __init__(self, file, budget: int) -> None:
        self._file = file
        self._budget = budget
        self._block = bytearray()
        self._queued = 0
        self._chunks: collections.deque[bytearray] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._digest = hashlib.sha256()
        self._thread = threading.Thread(target=self._hash, name=HASH_THREAD, daemon=True)
        self._thread.start()

    def write(self, data) -> int:
        # A copy: ``data`` views torch's buffer, which it may reuse once write returns.
        self._block += data
        if len(self._block) >= HASH_BLOCK_BYTES:
            self._hand_over()
        return self._file.write(data)

    def _hand_over(self) -> None:
        block, self._block = self._block, bytearray()
        with self._cond:
            self._cond.wait_for(
                lambda: not self._queued or self._queued + len(block) <= self._budget
            )
            self._chunks.append(block)
            self._queued += len(block)
            self._cond.notify_all()

    def flush(self) -> None:
        self._file.flush()

    def hexdigest(self) -> str:
        """Wait for the hashing thread to take everything written; the file's hex sha256."""
        if self._block:
            self._hand_over()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        return self._digest.hexdigest()

    def _hash(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._chunks or self._closed)
                if not self._chunks:
                    return
                chunk = self._chunks.popleft()
            self._digest.update(chunk)
            with self._cond:
                self._queued -= len(chunk)
                self._cond.notify_all()


def _save_hashed(state: dict[str, Any], path: Path, budget: int = HASH_BUFFER_BYTES) -> str:
    """``torch.save(state, path)``; returns the hex sha256 of the file written."""
    with path.open("wb") as file:
        writer = _HashingWriter(file, budget)
        try:
            torch.save(state, writer)
        finally:
            digest = writer.hexdigest()  # the thread ends on failure too
    return digest


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def save_meta(folder: Path, meta: CheckpointMeta) -> None:
    """(Re)write ``meta.json`` of a checkpoint folder."""
    (folder / META_FILE).write_text(meta.model_dump_json(indent=2))


def read_meta(folder: Path) -> CheckpointMeta:
    """Read and validate ``meta.json`` of a checkpoint folder.

    Raises:
        CheckpointError: The file is missing, not JSON or of an unknown format.
    """
    path = folder / META_FILE
    try:
        meta = CheckpointMeta.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: checkpoint has no {META_FILE}",
            fix="point at a folder written by sislab (it holds state.pt and meta.json).",
        ) from None
    except ValueError as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint metadata: {exc}") from None
    if meta.format_version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {meta.format_version}, this sislab reads {FORMAT_VERSION}"
        )
    return meta


def load_checkpoint(
    folder: Path, expected_method: str, map_location: torch.device | str = "cpu"
) -> tuple[CheckpointMeta, dict[str, Any]]:
    """Load a checkpoint written by ``save_checkpoint``.

    Args:
        folder: Checkpoint folder.
        expected_method: Method of the trial; a checkpoint of another method is refused.
        map_location: Device the tensors are loaded onto.

    Raises:
        CheckpointError: Missing, truncated, foreign or of another method; the message names the file.
    """
    meta = read_meta(folder)
    if meta.method != expected_method:
        raise CheckpointError(
            f"{folder}: checkpoint of method {meta.method!r}, the trial trains {expected_method!r}",
            fix="resume from a checkpoint of the same method, or start a new run folder.",
        )
    path = folder / STATE_FILE
    actual = file_sha256(path) if meta.state_sha256 is not None and path.exists() else None
    if actual is not None and actual != meta.state_sha256:
        raise CheckpointError(
            f"{path}: checkpoint is truncated or corrupt: its sha256 {actual} is not the "
            f"{meta.state_sha256} recorded in {META_FILE}",
            fix="resume from an earlier checkpoint of the trial.",
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint has no {STATE_FILE}") from None
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError on bad files
        raise CheckpointError(
            f"{path}: checkpoint is truncated or not a sislab checkpoint ({type(exc).__name__}: "
            f"{exc})",
            fix="resume from an earlier checkpoint of the trial.",
        ) from None
    return meta, state


def rebase_hyperparameters(saved: Any, fresh: Any) -> Any:
    """A saved procedure state with the optimiser settings of a freshly built procedure.

    An optimiser's or LR scheduler's state dict carries its learning rates and betas, so loading
    a checkpoint would bring back the values it was trained with. After a PBT exploit the trial
    trains on with perturbed ones: every optimiser keeps its moments and step counts and its
    position in the schedule (the ratio of current to base rate), but takes the base rate and
    betas of ``fresh`` (built from the trial's spec). Where they are equal nothing changes, so
    a plain resume loads exactly what was saved.

    Args:
        saved: ``Procedure.state_dict()`` of the checkpoint (nested dicts).
        fresh: ``Procedure.state_dict()`` of the procedure built from this trial's spec.
    """
    if not isinstance(saved, dict) or not isinstance(fresh, dict):
        return saved
    if "param_groups" in saved and "state" in saved:
        groups = []
        for old, new in zip(saved["param_groups"], fresh["param_groups"], strict=True):
            group = dict(old)
            old_base = old.get("initial_lr", old["lr"])
            new_base = new.get("initial_lr", new["lr"])
            if new_base != old_base:
                group["lr"] = new_base * (old["lr"] / old_base)
                if "initial_lr" in old:
                    group["initial_lr"] = new_base
            if "betas" in new:
                group["betas"] = new["betas"]
            groups.append(group)
        return {**saved, "param_groups": groups}
    if "base_lrs" in saved and "base_lrs" in fresh:
        out = dict(saved)
        out["base_lrs"] = list(fresh["base_lrs"])
        if "_last_lr" in saved:
            out["_last_lr"] = [
                last * new / old if new != old else last
                for last, old, new in zip(
                    saved["_last_lr"], saved["base_lrs"], fresh["base_lrs"], strict=True
                )
            ]
        return out
    # Only optimiser and scheduler entries change: every other mapping (a module's state dict
    # with its version _metadata) is returned as it was.
    changed = {}
    for key, value in saved.items():
        rebased = rebase_hyperparameters(value, fresh.get(key))
        if rebased is not value:
            changed[key] = rebased
    return {**saved, **changed} if changed else saved
