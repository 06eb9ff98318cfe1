"""What the training loop needs from its runtime: rank, device, reporting and the last checkpoint.

The loop never imports Ray. ``sislab.trainers.worker`` adapts this protocol to ``ray.train``;
``LocalContext`` runs the same loop in one process for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import torch
import torch.distributed as dist

from sislab.trainers.scratch import ScratchDir

CHECKPOINT_SCRATCH_PREFIX = "sislab-ckpt-"


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

    def best_checkpoint_uri(self) -> str:
        """Where ``save_best`` puts the run's best checkpoint (path or URI)."""
        ...

    def save_best(self, checkpoint_dir: Path) -> None:
        """Copy a checkpoint folder to the run's best checkpoint (rank 0), replacing it."""
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
            # Numbered after those already there, so a resumed run appends like Ray does.
            done = len(list(self.checkpoint_root.glob("checkpoint_*")))
            target = self.checkpoint_root / f"checkpoint_{done + 1:06d}"
            shutil.copytree(checkpoint_dir, target)

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        found = sorted(self.checkpoint_root.glob("checkpoint_*"))
        yield found[-1] if found else None

    def best_checkpoint_uri(self) -> str:
        return str((self.checkpoint_root / BEST_CHECKPOINT).resolve())

    def save_best(self, checkpoint_dir: Path) -> None:
        copy_checkpoint_files(checkpoint_dir, Path(self.best_checkpoint_uri()))


BEST_CHECKPOINT = "best_checkpoint"


def copy_checkpoint_files(src: Path, dst: Path, filesystem=None) -> None:
    """Replace ``dst`` by the files of checkpoint folder ``src``, ``meta.json`` last.

    A checkpoint without ``meta.json`` is refused on load, so a copy cut short by a crash is
    never mistaken for a complete one. ``filesystem`` is a pyarrow filesystem (None: local).
    """
    from pyarrow import fs as pafs

    filesystem = filesystem or pafs.LocalFileSystem()
    target = Path(dst).as_posix()
    filesystem.create_dir(target, recursive=True)
    filesystem.delete_dir_contents(target, missing_dir_ok=True)
    names = sorted(p.name for p in Path(src).iterdir() if p.is_file())
    for name in sorted(names, key=lambda n: n == "meta.json"):
        pafs.copy_files(
            str(Path(src) / name),
            f"{target}/{name}",
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=filesystem,
        )


def sum_over_ranks(values: torch.Tensor, ctx: TrainContext) -> torch.Tensor:
    """``values`` summed over all ranks (collective), on the device they came from.

    Without a process group (one rank, or tests) the values come back unchanged.
    """
    if ctx.world_size == 1 or not dist.is_initialized():
        return values
    moved = values.to(ctx.device)
    dist.all_reduce(moved)
    return moved.to(values.device)


def scratch_dir() -> ScratchDir:
    """A temporary folder removed on exit (or, if this process is killed meanwhile, by the next
    one), for writing a checkpoint before reporting it."""
    return ScratchDir(CHECKPOINT_SCRATCH_PREFIX)
