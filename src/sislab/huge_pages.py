"""Transparent huge pages for torch's large host allocations (importable without torch or Ray).

PyTorch's CPU allocator asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``,
2 MB-aligned) for every allocation of 2 MB and more when ``THP_MEM_ALLOC_ENABLE=1`` is in the
environment when torch starts (read once, at its first allocation). A training step's
activations and gradients then fault in 2 MB at a time instead of 4 kB: measured on a 2-core CPU,
SPADE at 256x512 took 0.7 million page faults per 4 iterations instead of 11.7 million, without
keeping freed memory (``train.reuse_host_memory``) and without its memory cost. The kernel must
offer THP (``/sys/kernel/mm/transparent_hugepage/enabled``: ``madvise`` or ``always``); where it
says ``never`` the advice is ignored and nothing changes.

sislab sets the variable for the processes it starts (Train workers, ``sislab bench``) unless the
environment already sets it: ``THP_MEM_ALLOC_ENABLE=0`` turns it off.
"""

from __future__ import annotations

import os
from pathlib import Path

THP_ENV = "THP_MEM_ALLOC_ENABLE"
KERNEL_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def default_huge_pages() -> None:
    """Turn torch's huge-page allocations on for this process's children (and for this process,
    when torch is not imported yet), unless the environment already decides."""
    os.environ.setdefault(THP_ENV, "1")


def huge_pages_requested() -> bool:
    """Whether this process's environment asks torch for huge pages (torch's ``check_env`` takes
    ``1`` and ``0`` and ignores, with a warning, anything else)."""
    return os.environ.get(THP_ENV) == "1"


def kernel_thp_mode() -> str | None:
    """The kernel's THP mode (``always``, ``madvise`` or ``never``); None where it has none."""
    try:
        text = KERNEL_SETTING.read_text()
    except OSError:
        return None
    chosen = [word for word in text.split() if word.startswith("[")]
    return chosen[0].strip("[]") if chosen else None


def huge_pages_in_effect() -> bool:
    """Whether torch's large allocations get huge pages in this process: requested, and the
    kernel offers THP to ``madvise``."""
    return huge_pages_requested() and kernel_thp_mode() in ("always", "madvise")


def huge_pages_note() -> str:
    """``on``, ``off``, or ``on (kernel: never)`` where the kernel ignores the request."""
    if not huge_pages_requested():
        return "off"
    return "on" if huge_pages_in_effect() else f"on (kernel: {kernel_thp_mode() or 'no THP'})"
