"""sislab.host_allocator: which malloc a process runs on, and tcmalloc preloaded where wanted."""

from __future__ import annotations

import os
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
from tests.malloc_probe import RELEASED_FAULTS, allocator_and_faults

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


def test_a_preloaded_process_runs_on_tcmalloc_and_keeps_freed_memory() -> None:
    if tcmalloc_library() is None:
        pytest.skip("libtcmalloc_minimal.so.4 not installed (make host-libs installs it)")
    glibc = allocator_and_faults()
    tcmalloc = allocator_and_faults(extra_env=trial_environment())
    assert glibc[0] == "glibc" and tcmalloc[0] == "tcmalloc"
    assert glibc[1] >= 0.9 * RELEASED_FAULTS  # glibc unmaps each round: 16k faults a round
    assert tcmalloc[1] < glibc[1] / 20  # tcmalloc hands the same pages back
