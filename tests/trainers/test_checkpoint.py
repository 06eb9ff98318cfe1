"""Checkpoints: round trip, weights-only loading, and clear errors for foreign or broken files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from sislab.errors import CheckpointError
from sislab.trainers.checkpoint import (
    CheckpointMeta,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _save(folder: Path, method: str = "spade") -> None:
    meta = CheckpointMeta(method=method, epoch=3, iteration=30, images_seen=60)
    save_checkpoint(folder, meta, {"net": {"w": torch.arange(4.0)}, "rng": rng_state()})


def test_round_trip(tmp_path: Path) -> None:
    _save(tmp_path)
    meta, state = load_checkpoint(tmp_path, "spade")
    assert (meta.epoch, meta.iteration) == (3, 30)
    assert torch.equal(state["net"]["w"], torch.arange(4.0))


def test_rng_state_restores_every_generator() -> None:
    saved = rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(saved)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_other_method_is_refused(tmp_path: Path) -> None:
    _save(tmp_path, method="scgan")
    with pytest.raises(CheckpointError, match=r"checkpoint of method 'scgan'.*trains 'spade'"):
        load_checkpoint(tmp_path, "spade")


def test_truncated_state_names_the_file(tmp_path: Path) -> None:
    _save(tmp_path)
    state = tmp_path / "state.pt"
    state.write_bytes(state.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=r"state\.pt: checkpoint is truncated"):
        load_checkpoint(tmp_path, "spade")


def test_pickled_objects_are_not_loaded(tmp_path: Path) -> None:
    _save(tmp_path)
    # A checkpoint smuggling an arbitrary object must not unpickle it (weights_only=True).
    torch.save({"net": {"w": torch.zeros(1)}, "evil": Path("/")}, tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match="not a sislab checkpoint"):
        load_checkpoint(tmp_path, "spade")


def test_missing_meta(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"has no meta\.json"):
        load_checkpoint(tmp_path, "spade")
