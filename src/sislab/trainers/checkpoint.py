"""Checkpoints as data: state dicts in ``state.pt`` plus a JSON ``meta.json``; never pickled objects.

Loading uses ``torch.load(weights_only=True)``, so a checkpoint cannot execute code, and the meta
file is checked against the trial (method, format) before any tensor is touched.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from sislab.errors import CheckpointError

FORMAT_VERSION = 1
STATE_FILE = "state.pt"
META_FILE = "meta.json"


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
    torch.save(state, tmp)
    tmp.replace(folder / STATE_FILE)
    save_meta(folder, meta)
    return folder


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
