"""``sislab bench checkpoint``: writing a trial's checkpoint against writing it, then hashing it.

A checkpoint's ``state.pt`` is recorded with its sha256 (checked on load). The plain way hashes
the file once it is written, reading it again; sislab hashes each chunk on a second thread while
``torch.save`` writes it (``trainers.checkpoint``). Both sides write the same state (a method's
procedure after one training step: networks, optimiser moments, schedulers) into the same folder,
alternately, in one process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel

from sislab.models.registry import get_method
from sislab.spec.models import TrainSpec
from sislab.trainers.bench import bench_geometry, bench_procedure, synthetic_batch
from sislab.trainers.checkpoint import (
    STATE_FILE,
    CheckpointMeta,
    file_sha256,
    rng_state,
    save_checkpoint,
)


@dataclass
class CheckpointBench:
    """Result of ``bench_checkpoint``: seconds of each write, both sides alternating."""

    method: str
    height: int
    width: int
    state_mb: float
    sislab_s: list[float]
    plain_s: list[float]

    @property
    def sislab_median_s(self) -> float:
        """Median of sislab's writes (hashed while written)."""
        return statistics.median(self.sislab_s)

    @property
    def plain_median_s(self) -> float:
        """Median of the plain writes (``torch.save``, then the file's sha256)."""
        return statistics.median(self.plain_s)

    @property
    def ratio(self) -> float:
        """sislab's median over the plain way's."""
        return self.sislab_median_s / self.plain_median_s


def bench_checkpoint(
    method_name: str,
    dataset: str,
    *,
    size: tuple[int, int] | None = None,
    repeats: int = 7,
    model_config: BaseModel | None = None,
) -> CheckpointBench:
    """Write the checkpoint of ``method_name`` ``repeats`` times each way, alternating.

    Args:
        method_name: Registered method.
        dataset: Dataset preset giving label channels and default resolution.
        size: (H, W) overriding the preset's resolution (some first layers' sizes follow it,
            e.g. SPADE's from z).
        repeats: Writes per side (the medians are compared).
        model_config: The method's config (default: its defaults).
    """
    geometry = bench_geometry(dataset, size)
    method = get_method(method_name)
    device = torch.device("cpu")
    procedure = bench_procedure(
        method, model_config or method.config(), geometry, TrainSpec(batch_size=2), device
    )
    procedure.train_step(synthetic_batch(geometry, 2, device))  # the optimisers' moments
    state = {"procedure": procedure.state_dict(), "rng": rng_state()}
    meta = CheckpointMeta(method=method_name, epoch=1, iteration=1, images_seen=1)
    sislab_s, plain_s = [], []
    with tempfile.TemporaryDirectory(prefix="sislab-bench-checkpoint-") as tmp:
        folder = Path(tmp)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.save(state, folder / "plain.pt")
            file_sha256(folder / "plain.pt")
            plain_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            save_checkpoint(folder / "sislab", meta, state)
            sislab_s.append(time.perf_counter() - start)
        state_mb = (folder / "sislab" / STATE_FILE).stat().st_size / 1e6
    return CheckpointBench(
        method_name, geometry.height, geometry.width, state_mb, sislab_s, plain_s
    )
