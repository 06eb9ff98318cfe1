"""train.reuse_host_memory: freed host memory is reused instead of page-faulted in again."""

from __future__ import annotations

import torch
from tests.malloc_probe import RELEASED_FAULTS, allocator_and_faults

from sislab import huge_pages
from sislab.huge_pages import THP_ENV
from sislab.spec.models import TrainSpec
from sislab.trainers.procedures import switches


def test_kept_memory_is_reused_without_page_faults() -> None:
    released = allocator_and_faults("release")
    kept = allocator_and_faults("keep")
    assert released[0] == kept[0] == "glibc"
    assert released[1] >= 0.9 * RELEASED_FAULTS  # every round faults its 16k pages in again
    assert kept[1] < released[1] / 20


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
    monkeypatch.setattr(switches, "allocator_in_use", lambda: "glibc")  # whatever runs pytest
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
