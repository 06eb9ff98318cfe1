"""What the training loop needs from its runtime: rank, device, reporting and the last checkpoint.

The loop never imports Ray. ``sislab.trainers.worker`` adapts this protocol to ``ray.train``;
``LocalContext`` runs the same loop in one process for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import torch


class TrainContext(Protocol):
    """The runtime of one training worker."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on global rank 0, the only rank that writes files and MLflow records."""
        ...

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        """Report metrics (and a checkpoint folder, rank 0 only); every rank calls it equally often."""
        ...

    def latest_checkpoint(self) -> contextlib.AbstractContextManager[Path | None]:
        """Context manager yielding the folder of the latest reported checkpoint, or None."""
        ...


class LocalContext:
    """Single-process context: rank 0 of 1, checkpoints kept in a local folder.

    Args:
        checkpoint_root: Folder where reported checkpoints are copied (``checkpoint_NNNNNN``).
        device: Torch device to train on.
    """

    def __init__(self, checkpoint_root: Path, device: torch.device | None = None) -> None:
        self.rank = 0
        self.world_size = 1
        self.device = device or torch.device("cpu")
        self.checkpoint_root = Path(checkpoint_root)
        self.reports: list[dict[str, float]] = []

    @property
    def is_main(self) -> bool:
        return True

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint_dir is not None:
            target = self.checkpoint_root / f"checkpoint_{len(self.reports):06d}"
            shutil.copytree(checkpoint_dir, target)

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        found = sorted(self.checkpoint_root.glob("checkpoint_*"))
        yield found[-1] if found else None


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder removed on exit, for writing a checkpoint before reporting it."""
    with tempfile.TemporaryDirectory(prefix="sislab-ckpt-") as tmp:
        yield Path(tmp)
