"""Temporary folders of a training process, and the removal of those a killed process left.

A trial's worker writes each checkpoint into a temporary folder before reporting it, and its
MLflow sender spools artifacts in another. Context managers and ``close()`` remove them, but a
worker killed by Ray (a trial stopped by ASHA or PBT, a node drained, ``sislab chaos``) runs
neither: every kill during a checkpoint left the whole checkpoint in ``/tmp`` (51 MB each for the
test suite's tiny SPADE, GBs for a real one), and a long sweep fills the node's disk.

Each folder is held with an exclusive ``flock`` on its own descriptor for as long as its owner
lives; the kernel drops the lock when the process dies, however it dies. Creating a folder
first removes the folders of the same kind whose lock is free: their owner is gone. A folder
younger than ``ABANDONED_AFTER_S`` is left alone, so a folder made but not yet locked by another
process (microseconds) is never taken for abandoned.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

ABANDONED_AFTER_S = 60.0


def reap_abandoned(
    prefix: str, root: Path | None = None, min_age_s: float = ABANDONED_AFTER_S
) -> int:
    """Remove the folders ``<root>/<prefix>*`` whose owner process is gone.

    Args:
        prefix: The folders' name prefix (one kind of folder).
        root: Where they are (default: the system's temporary folder).
        min_age_s: Folders modified more recently are kept.

    Returns:
        How many folders were removed.
    """
    removed = 0
    now = time.time()
    for path in Path(root or tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if now - path.stat().st_mtime < min_age_s:
                continue
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # gone meanwhile, not a folder, not ours to open
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its owner lives
            os.close(fd)
            continue
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)
        removed += 1
    return removed


class ScratchDir:
    """A temporary folder held by this process until :meth:`close` (which removes it).

    Args:
        prefix: Name prefix, one per kind of folder (abandoned ones of this kind are removed
            first).
        root: Parent folder (default: the system's temporary folder).
    """

    def __init__(self, prefix: str, root: Path | None = None) -> None:
        reap_abandoned(prefix, root)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        self._fd: int | None = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        """Remove the folder and release it (idempotent)."""
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)
        self._fd = None

    def keep(self, prefix: str) -> Path:
        """Release the folder without removing it, renamed to start with ``prefix`` (a prefix no
        one reaps): for contents a person must still see. Returns the new path."""
        kept = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path.parent))
        kept.rmdir()
        self.path.rename(kept)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path = kept
        return kept

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
