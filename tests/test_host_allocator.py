"""sislab.host_allocator: which malloc a process runs on, and tcmalloc preloaded where wanted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sislab import host_allocator
from sislab.host_allocator import (
    ALLOCATOR_ENV,
    PRELOAD_ENV,
    REEXEC_ENV,
    allocator_in_use,
    preload_value,
    reexec_arguments,
    restore_preload,
    tcmalloc_library,
    trial_environment,
)

_TCMALLOC_LINE = (
    "7f1c2a000000-7f1c2a021000 r-xp 00000000 fe:01 1234 "
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n"
)
_LIBC_LINE = (
    "7f1c2b000000-7f1c2b028000 r--p 00000000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
)


def test_allocator_in_use_reads_the_maps(tmp_path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(_LIBC_LINE)
    assert allocator_in_use(maps) == "glibc"
    maps.write_text(_LIBC_LINE + _TCMALLOC_LINE)
    assert allocator_in_use(maps) == "tcmalloc"
    assert allocator_in_use(tmp_path / "missing") == "glibc"


def test_preload_value_puts_the_library_first_once() -> None:
    lib = "libtcmalloc_minimal.so.4"
    assert preload_value(None, lib) == lib
    assert preload_value("libfoo.so:libbar.so", lib) == f"{lib} libfoo.so libbar.so"
    assert preload_value(f"libfoo.so {lib}", lib) == f"{lib} libfoo.so"


@pytest.fixture
def found(monkeypatch):
    """tcmalloc 'installed' under a fixed name, whatever this machine has."""
    monkeypatch.setattr(host_allocator, "tcmalloc_library", lambda: "libtcmalloc_minimal.so.4")
    monkeypatch.delenv(ALLOCATOR_ENV, raising=False)
    monkeypatch.delenv(PRELOAD_ENV, raising=False)
    monkeypatch.delenv(REEXEC_ENV, raising=False)


def test_trial_environment_preloads_tcmalloc_unless_told_otherwise(found, monkeypatch) -> None:
    env = trial_environment()
    assert env[PRELOAD_ENV] == "libtcmalloc_minimal.so.4"
    assert int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) >= 1 << 40
    monkeypatch.setenv(PRELOAD_ENV, "libasan.so")
    assert trial_environment()[PRELOAD_ENV] == "libtcmalloc_minimal.so.4 libasan.so"
    monkeypatch.setenv(PRELOAD_ENV, "/opt/lib/libjemalloc.so.2")  # the lab chose an allocator
    assert trial_environment() == {}
    monkeypatch.delenv(PRELOAD_ENV)
    monkeypatch.setenv(ALLOCATOR_ENV, "glibc")
    assert trial_environment() == {}
    monkeypatch.setenv(ALLOCATOR_ENV, "tcmalloc")
    monkeypatch.setattr(host_allocator, "tcmalloc_library", lambda: None)  # not installed
    assert trial_environment() == {}


def test_reexecution_happens_once_and_children_get_the_original_preload(found, monkeypatch) -> None:
    monkeypatch.setenv(PRELOAD_ENV, "libfoo.so")
    argv, env = reexec_arguments()
    assert argv == list(sys.orig_argv)
    assert env[PRELOAD_ENV] == "libtcmalloc_minimal.so.4 libfoo.so"
    assert env[REEXEC_ENV] == "libfoo.so"
    # The re-executed process: no second re-execution, even where the loader refused the
    # library; then its children get what the command was started with.
    monkeypatch.setenv(PRELOAD_ENV, env[PRELOAD_ENV])
    monkeypatch.setenv(REEXEC_ENV, env[REEXEC_ENV])
    assert reexec_arguments() is None
    restore_preload()
    assert os.environ[PRELOAD_ENV] == "libfoo.so" and REEXEC_ENV not in os.environ
    monkeypatch.setenv(PRELOAD_ENV, "libtcmalloc_minimal.so.4")
    monkeypatch.setenv(REEXEC_ENV, "")
    restore_preload()
    assert PRELOAD_ENV not in os.environ


# Frees and reallocates 64 MB four times; prints the allocator and the minor page faults. The
# process's global malloc, as torch gets it (a handle on libc.so.6 would reach glibc's own).
_PROBE = """
import ctypes, json, resource
from sislab.host_allocator import allocator_in_use
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
def round_trip():
    block = libc.malloc(2**26)
    ctypes.memset(block, 1, 2**26)
    libc.free(ctypes.c_void_p(block))
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    round_trip()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps([allocator_in_use(), faults]))
"""


def test_a_preloaded_process_runs_on_tcmalloc_and_keeps_freed_memory() -> None:
    if tcmalloc_library() is None:
        pytest.skip("libtcmalloc_minimal.so.4 not installed (make host-libs installs it)")
    base = {k: v for k, v in os.environ.items() if k not in (PRELOAD_ENV, ALLOCATOR_ENV)}
    runs = {}
    for name, extra in (("glibc", {}), ("tcmalloc", trial_environment())):
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                             check=True, env={**base, **extra})  # fmt: skip
        runs[name] = json.loads(out.stdout)
    assert runs["glibc"][0] == "glibc" and runs["tcmalloc"][0] == "tcmalloc"
    assert runs["glibc"][1] >= 0.9 * 4 * 2**26 // 4096  # glibc unmaps it: 16k faults a round
    assert runs["tcmalloc"][1] < runs["glibc"][1] / 20  # tcmalloc hands the same pages back
