"""train.reuse_host_memory: freed host memory is reused instead of page-faulted in again."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from sislab import huge_pages
from sislab.huge_pages import THP_ENV
from sislab.spec.models import TrainSpec
from sislab.trainers.procedures import switches

# Allocates (glibc's malloc), fills and frees 64 MB five times; prints the minor page faults of
# the last four rounds (the first one faults its pages in either way).
_PROBE = """
import ctypes, json, resource, sys
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
if sys.argv[1] == "keep":
    from sislab.trainers.procedures.switches import keep_freed_host_memory
    assert keep_freed_host_memory()
def round_trip():
    block = libc.malloc(2**26)
    ctypes.memset(block, 1, 2**26)
    libc.free(ctypes.c_void_p(block))
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    round_trip()
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_kept_memory_is_reused_without_page_faults() -> None:
    released, kept = _faults("release"), _faults("keep")
    assert released >= 0.9 * 4 * 2**26 // 4096  # every round faults its 16k pages in again
    assert kept < released / 20


def test_procedures_apply_the_switch(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(switches, "keep_freed_host_memory", lambda: calls.append(1) or True)
    switches.configure_backends(torch.device("cpu"), TrainSpec(reuse_host_memory=False))
    assert not calls
    switches.configure_backends(torch.device("cpu"), TrainSpec(reuse_host_memory=True))
    assert calls == [1]


def test_auto_keeps_freed_memory_only_without_huge_pages(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(switches, "keep_freed_host_memory", lambda: calls.append(1) or True)
    assert TrainSpec().reuse_host_memory == "auto"  # the default
    cases = (("1", "madvise", "on", False), ("0", "madvise", "off", True),
             ("1", "never", "on (kernel: never)", True))  # fmt: skip
    for variable, mode, note, kept in cases:
        monkeypatch.setenv(THP_ENV, variable)
        monkeypatch.setattr(huge_pages, "kernel_thp_mode", lambda mode=mode: mode)
        calls.clear()
        switches.configure_backends(torch.device("cpu"), TrainSpec())
        assert calls == ([1] if kept else []), note
        assert switches.reuses_host_memory(TrainSpec()) is kept
        tag = switches.switch_notes(TrainSpec())["sislab.speed_switches"]
        assert f"host_allocator=glibc reuse_host_memory={kept} huge_pages={note}" in tag


def test_auto_leaves_tcmalloc_alone(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(switches, "keep_freed_host_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(switches, "allocator_in_use", lambda: "tcmalloc")
    monkeypatch.setenv(THP_ENV, "0")  # where glibc would be told to keep freed memory
    switches.configure_backends(torch.device("cpu"), TrainSpec())
    assert not calls and switches.reuses_host_memory(TrainSpec()) is False
    tag = switches.switch_notes(TrainSpec())["sislab.speed_switches"]
    assert "host_allocator=tcmalloc reuse_host_memory=False huge_pages=off" in tag
    # Asked for explicitly, the switch is applied still (a no-op under tcmalloc).
    switches.configure_backends(torch.device("cpu"), TrainSpec(reuse_host_memory=True))
    assert calls == [1]
