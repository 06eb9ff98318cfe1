"""A child process that frees and reallocates 64 MB through the process's malloc, for the tests
of kept host memory (glibc's settings, tcmalloc)."""

from __future__ import annotations

import json
import subprocess
import sys

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
    mode: str = "release", env: dict[str, str] | None = None
) -> tuple[str, int]:
    """Run the probe (``mode`` ``keep``: glibc told to keep freed memory first) in a child with
    ``env``; its allocator and minor page faults."""
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                         check=True, env=env)  # fmt: skip
    allocator, faults = json.loads(out.stdout)
    return allocator, faults
