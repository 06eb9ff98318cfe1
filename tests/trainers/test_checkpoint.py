"""Checkpoints: round trip, weights-only loading, and clear errors for foreign or broken files."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from sislab.errors import CheckpointError
from sislab.trainers.checkpoint import (
    HASH_THREAD,
    CheckpointMeta,
    _save_hashed,
    file_sha256,
    load_checkpoint,
    read_meta,
    rng_state,
    save_checkpoint,
    save_meta,
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


def test_the_recorded_sha256_is_the_written_files(tmp_path: Path) -> None:
    # Hashed while torch.save writes, chunk by chunk on a second thread: large tensors (many
    # chunks through the bounded buffer of copies) and small ones must come out as the file's
    # own hash.
    state = {f"w{i}": torch.randn(300_000 + i) for i in range(24)}
    state["small"] = {"step": 7, "t": torch.arange(3)}
    meta = CheckpointMeta(method="spade", epoch=1, iteration=1, images_seen=1)
    save_checkpoint(tmp_path, meta, state)
    written = (tmp_path / "state.pt").read_bytes()
    assert read_meta(tmp_path).state_sha256 == hashlib.sha256(written).hexdigest()
    _, loaded = load_checkpoint(tmp_path, "spade")
    assert all(torch.equal(loaded[f"w{i}"], state[f"w{i}"]) for i in range(24))
    # A budget smaller than any chunk: one chunk waits at a time, the hash is the same.
    assert _save_hashed(state, tmp_path / "again.pt", budget=1) == file_sha256(
        tmp_path / "again.pt"
    )


def test_a_failed_save_leaves_no_hashing_thread(tmp_path: Path) -> None:
    meta = CheckpointMeta(method="spade", epoch=1, iteration=1, images_seen=1)
    with pytest.raises(Exception, match="pickle"):
        save_checkpoint(tmp_path, meta, {"w": torch.randn(1000), "f": lambda: 0})
    assert not [t for t in threading.enumerate() if t.name == HASH_THREAD]
    assert not (tmp_path / "state.pt").exists()


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
    # Another file than the one written: its sha256 is not the one meta.json records.
    with pytest.raises(CheckpointError, match=r"is not the [0-9a-f]{64} recorded in meta\.json"):
        load_checkpoint(tmp_path, "spade")
    meta = read_meta(tmp_path)
    meta.state_sha256 = None  # a checkpoint written before sislab recorded the sha256
    save_meta(tmp_path, meta)
    with pytest.raises(CheckpointError, match="not a sislab checkpoint"):
        load_checkpoint(tmp_path, "spade")


def test_missing_meta(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"has no meta\.json"):
        load_checkpoint(tmp_path, "spade")


def _optimised(lr: float, betas: tuple[float, float], steps: int, epochs_done: int):
    """A net, its Adam and SPADE's linear decay after some steps and epochs."""
    from sislab.trainers.procedures.schedule import linear_decay

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)
    sched = linear_decay(opt, epochs=4, decay_epochs=2)
    for _ in range(steps):
        opt.zero_grad()
        net(torch.ones(1, 3)).sum().backward()
        opt.step()
    for _ in range(epochs_done):
        sched.step()
    return net, opt, sched


def _state(net, opt, sched) -> dict:
    return {"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}


def test_rebase_takes_new_rates_and_keeps_moments_and_schedule_position() -> None:
    from sislab.trainers.checkpoint import rebase_hyperparameters

    # Trained 3 epochs at 2e-4: the decay factor is 0.5, the rate 1e-4.
    saved = _state(*_optimised(2e-4, (0.0, 0.999), steps=5, epochs_done=3))
    assert saved["opt"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    fresh_parts = _optimised(3e-4, (0.5, 0.9), steps=0, epochs_done=0)
    net, opt, sched = fresh_parts
    net.load_state_dict(saved["net"])
    rebased = rebase_hyperparameters(saved, _state(*fresh_parts))
    opt.load_state_dict(rebased["opt"])
    sched.load_state_dict(rebased["sched"])
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(1.5e-4)  # new base 3e-4 at the same factor 0.5
    assert group["initial_lr"] == pytest.approx(3e-4) and group["betas"] == (0.5, 0.9)
    assert sched.base_lrs == [pytest.approx(3e-4)] and sched.last_epoch == 3
    for p, moments in opt.state.items():
        torch.testing.assert_close(
            moments["exp_avg"], saved["opt"]["state"][0 if p is net.weight else 1]["exp_avg"]
        )
        assert float(moments["step"]) == 5
    sched.step()  # epoch 4: factor 0 at the end of the decay
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)
    # The saved state is not modified, and a module's state dict comes back as it was.
    assert saved["opt"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert rebased["net"] is saved["net"]


def test_rebase_with_the_same_settings_changes_nothing() -> None:
    from sislab.trainers.checkpoint import rebase_hyperparameters

    saved = _state(*_optimised(2e-4, (0.0, 0.999), steps=2, epochs_done=3))
    fresh = _state(*_optimised(2e-4, (0.0, 0.999), steps=0, epochs_done=0))
    rebased = rebase_hyperparameters(saved, fresh)
    assert rebased["opt"]["param_groups"] == saved["opt"]["param_groups"]
    assert rebased["sched"] == saved["sched"]
