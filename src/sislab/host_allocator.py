"""tcmalloc as the host allocator of the processes that train (importable without torch or Ray).

glibc's malloc serves each large block (a training step's activations and gradients) with its
own ``mmap`` and unmaps it when freed, so every step faults its memory in again, zero-filled;
told to keep freed memory (``train.reuse_host_memory``) it fragments its heap instead (SPADE
256x512 fp32: 4.6 GB peak RSS against 3.7-4.0 GB). tcmalloc keeps freed spans for reuse without
that fragmentation: on a 2-core Intel Xeon with AMX, SPADE's 256x512 step took 10.3-11.1 s with
tcmalloc against 14.8-16.8 s with glibc's huge-page faults and 11.3 s with glibc keeping its
memory, at 3.7 GB peak RSS against 3.9-4.0 and 4.6 GB (docs/benchmarks.md, "tcmalloc").
gperftools' ``libtcmalloc_minimal`` (Debian/Ubuntu package ``libtcmalloc-minimal4``) is the one
used: it needs nothing beyond the C++ runtime.

An allocator must be in place before the process's first allocation, so it is preloaded
(``LD_PRELOAD``) into processes sislab starts: the Train processes of a sweep's trials (through
Tune's runtime env, like ``sislab.huge_pages``) and the commands that time training steps in
their own process, ``sislab bench train``/``trial``, ``estimate`` and ``run``, which re-execute
themselves once. ``SISLAB_HOST_ALLOCATOR=glibc`` keeps glibc's malloc; where the library is not
installed nothing is preloaded, and the run's ``sislab.speed_switches`` tag says which allocator
each process had (:func:`allocator_in_use`).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

ALLOCATOR_ENV = "SISLAB_HOST_ALLOCATOR"
PRELOAD_ENV = "LD_PRELOAD"
# Set in the environment of a re-executed command to the LD_PRELOAD it had before (so that a
# preload the loader refused does not re-execute it again, and its children get the original).
REEXEC_ENV = "SISLAB_ALLOCATOR_REEXEC"
TCMALLOC = "tcmalloc_minimal"
# tcmalloc prints a line for every allocation over this many bytes (default 1 GiB): a 256x512
# batch's largest activations get near it, and such lines in a trial's log are noise.
_QUIET = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}
_KNOWN = ("tcmalloc", "jemalloc", "mimalloc")
# Every variable :func:`trial_environment` may set.
TRIAL_VARIABLES = (PRELOAD_ENV, *_QUIET)


def wanted() -> bool:
    """Whether this environment leaves the choice to sislab (``SISLAB_HOST_ALLOCATOR`` unset or
    ``tcmalloc``) rather than asking for glibc's malloc (``glibc``)."""
    return os.environ.get(ALLOCATOR_ENV, "tcmalloc") != "glibc"


def tcmalloc_library() -> str | None:
    """tcmalloc's library name as the dynamic loader finds it (``libtcmalloc_minimal.so.4``), or
    None where it is not installed."""
    return ctypes.util.find_library(TCMALLOC)


def allocator_in_use(maps: Path = Path("/proc/self/maps")) -> str:
    """The malloc this process runs on: ``tcmalloc``, ``jemalloc`` or ``mimalloc`` when one is
    mapped into it, else ``glibc``."""
    try:
        text = maps.read_text()
    except OSError:
        return "glibc"
    for name in _KNOWN:
        if f"/lib{name}" in text:
            return name
    return "glibc"


def preload_value(current: str | None, library: str) -> str:
    """``LD_PRELOAD`` with ``library`` first, keeping what ``current`` already preloads."""
    rest = [entry for entry in (current or "").replace(":", " ").split() if entry != library]
    return " ".join([library, *rest])


def trial_environment() -> dict[str, str]:
    """The variables that give a process started from this one tcmalloc: empty where glibc is
    asked for, the library is missing, or ``LD_PRELOAD`` already names an allocator."""
    current = os.environ.get(PRELOAD_ENV)
    if not wanted() or any(name in (current or "") for name in _KNOWN):
        return {}
    library = tcmalloc_library()
    if library is None:
        return {}
    return {PRELOAD_ENV: preload_value(current, library), **_QUIET}


def reexec_arguments() -> tuple[list[str], dict[str, str]] | None:
    """The command line and environment to re-execute this process with tcmalloc, or None when
    it runs on it already, glibc is asked for, the library is missing, or this process is the
    re-execution (the loader only warns about a preload it cannot open)."""
    if REEXEC_ENV in os.environ or allocator_in_use() != "glibc":
        return None
    extra = trial_environment()
    if not extra:
        return None
    original = os.environ.get(PRELOAD_ENV, "")
    return list(sys.orig_argv), {**os.environ, **extra, REEXEC_ENV: original}


def reexec_with_tcmalloc() -> None:
    """Replace this process by the same command with tcmalloc preloaded (see
    :func:`reexec_arguments`); returns only where nothing is to be done."""
    found = reexec_arguments()
    if found is None:
        return
    argv, env = found
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def restore_preload() -> None:
    """In a re-executed process: give its children the ``LD_PRELOAD`` the command was started
    with (a local Ray cluster it starts, say), now that this process has its allocator."""
    original = os.environ.pop(REEXEC_ENV, None)
    if original is None:
        return
    if original:
        os.environ[PRELOAD_ENV] = original
    else:
        os.environ.pop(PRELOAD_ENV, None)
