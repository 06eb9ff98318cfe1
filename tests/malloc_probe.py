"""A child process that frees and reallocates 64 MB through the process's malloc, for the tests
of kept host memory (glibc's settings, tcmalloc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sislab.host_allocator import ALLOCATOR_ENV, PRELOAD_ENV

BLOCK = 2**26
ROUNDS = 4

# Prints the allocator and the minor page faults of ROUNDS rounds after a first one (which
# faults its pages in either way). The process's global malloc, as torch gets it: a handle on
# libc.so.6 would reach glibc's own under a preloaded allocator.
_PROBE = f"""
import ctypes, json, resource, sys
from sislab.host_allocator import allocator_in_use
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
if sys.argv[1] == "keep":
    from sislab.trainers.procedures.switches import keep_freed_host_memory
    assert keep_freed_host_memory()
def round_trip():
    block = libc.malloc({BLOCK})
    ctypes.memset(block, 1, {BLOCK})
    libc.free(ctypes.c_void_p(block))
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):
    round_trip()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps([allocator_in_use(), faults]))
"""

# What a process handing every round back to the kernel faults in: each round's 4 kB pages.
RELEASED_FAULTS = ROUNDS * BLOCK // 4096


def allocator_and_faults(
    mode: str = "release", extra_env: dict[str, str] | None = None
) -> tuple[str, int]:
    """Run the probe (``mode`` ``keep``: glibc told to keep freed memory first) in a child with
    this environment less any preload or allocator choice, plus ``extra_env``; its allocator and
    minor page faults."""
    env = {k: v for k, v in os.environ.items() if k not in (PRELOAD_ENV, ALLOCATOR_ENV)}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                         check=True, env={**env, **(extra_env or {})})  # fmt: skip
    allocator, faults = json.loads(out.stdout)
    return allocator, faults
