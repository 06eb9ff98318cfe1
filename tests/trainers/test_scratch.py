"""Temporary folders of a killed training process are removed by the next one, and only those."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sislab.trainers.scratch import ABANDONED_AFTER_S, ScratchDir, reap_abandoned

PREFIX = "sislab-test-scratch-"

# A process that makes a folder, writes into it, says where, and waits to be killed.
OWNER = """
import sys, time
from pathlib import Path
from sislab.trainers.scratch import ScratchDir
folder = ScratchDir(sys.argv[1], Path(sys.argv[2]))
(folder.path / "state.pt").write_bytes(b"x" * 1000)
print(folder.path, flush=True)
time.sleep(600)
"""


def _age(path: Path, seconds: float = ABANDONED_AFTER_S + 5) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _killed_owner(root: Path) -> Path:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, PREFIX, str(root)], stdout=subprocess.PIPE, text=True
    )
    path = Path(owner.stdout.readline().strip())
    owner.send_signal(signal.SIGKILL)  # no finally, no atexit: as Ray kills a stopped trial
    owner.wait()
    owner.stdout.close()
    return path


def test_a_killed_processs_folder_is_removed_by_the_next_one(tmp_path: Path) -> None:
    left = _killed_owner(tmp_path)
    assert (left / "state.pt").exists()
    _age(left)
    with ScratchDir(PREFIX, tmp_path) as mine:
        assert mine.exists()
        assert not left.exists()
    assert not mine.exists()


def test_a_live_owners_folder_is_kept_however_old(tmp_path: Path) -> None:
    live = ScratchDir(PREFIX, tmp_path)
    _age(live.path, 3600)
    assert reap_abandoned(PREFIX, tmp_path) == 0
    assert live.path.exists()
    live.close()
    assert not live.path.exists()


def test_a_young_folder_is_kept_even_without_an_owner(tmp_path: Path) -> None:
    # Made by another process that has not locked it yet: never taken for abandoned.
    left = _killed_owner(tmp_path)
    assert reap_abandoned(PREFIX, tmp_path) == 0
    assert left.exists()
    _age(left)
    assert reap_abandoned(PREFIX, tmp_path) == 1


def test_other_kinds_and_kept_folders_are_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "sislab-other-kind-x"
    other.mkdir()
    kept = ScratchDir(PREFIX, tmp_path).keep("sislab-test-kept-")
    for path in (other, kept):
        _age(path)
    assert reap_abandoned(PREFIX, tmp_path) == 0
    assert other.exists() and kept.exists() and kept.name.startswith("sislab-test-kept-")
