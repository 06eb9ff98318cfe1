"""Torch's huge-page allocations (sislab.huge_pages): set for the processes sislab starts unless
the environment decides, reported as torch reads them, and what they change: the kernel's
huge-page advice on a large tensor's buffer (where the kernel offers transparent huge pages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sislab import huge_pages
from sislab.huge_pages import THP_ENV

# Allocates and fills a 64 MB tensor; prints the kernel's flags of the mapping that holds it.
_PROBE = """
import json, torch
block = torch.empty(2**24, dtype=torch.float32)
block.fill_(1.0)
address, inside = block.data_ptr(), False
for line in open("/proc/self/smaps"):
    head = line.split()[0]
    if "-" in head and not head.endswith(":"):
        start, end = (int(x, 16) for x in head.split("-"))
        inside = start <= address < end
    elif inside and head == "VmFlags:":
        print(json.dumps(line.split()[1:]))
        break
"""


def _env(value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != THP_ENV}
    return env if value is None else {**env, THP_ENV: value}


def test_the_cli_sets_the_default_and_keeps_the_environments_choice() -> None:
    script = (
        "import os\n"
        "from sislab.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(os.environ.get({THP_ENV!r}))"
    )
    for given, expected in ((None, "1"), ("0", "0")):
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=_env(given)
        )
        assert out.stdout.strip().splitlines()[-1] == expected, out


def test_note_says_what_torch_reads_and_what_the_kernel_ignores(monkeypatch) -> None:
    monkeypatch.setenv(THP_ENV, "true")  # torch's check_env takes 1 and 0 only
    assert huge_pages.huge_pages_note() == "off"
    monkeypatch.setenv(THP_ENV, "1")
    monkeypatch.setattr(huge_pages, "kernel_thp_mode", lambda: "madvise")
    assert huge_pages.huge_pages_note() == "on"
    monkeypatch.setattr(huge_pages, "kernel_thp_mode", lambda: "never")
    assert huge_pages.huge_pages_note() == "on (kernel: never)"


def test_kernel_mode_is_the_bracketed_word(tmp_path, monkeypatch) -> None:
    setting = tmp_path / "enabled"
    setting.write_text("always [madvise] never\n")
    monkeypatch.setattr(huge_pages, "KERNEL_SETTING", setting)
    assert huge_pages.kernel_thp_mode() == "madvise"
    monkeypatch.setattr(huge_pages, "KERNEL_SETTING", tmp_path / "absent")
    assert huge_pages.kernel_thp_mode() is None


def _mapping_flags(value: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
        env=_env(value),
    )  # fmt: skip
    return json.loads(out.stdout)


@pytest.mark.skipif(
    huge_pages.kernel_thp_mode() not in ("always", "madvise"),
    reason="the kernel offers no transparent huge pages to torch's madvise",
)
def test_a_large_buffer_is_advised_to_huge_pages_only_when_requested() -> None:
    # The advice (VmFlags "hg", MADV_HUGEPAGE), not the pages the kernel then finds: how many
    # huge pages are free depends on the machine's fragmentation (a 4x fault-count bound failed
    # on a CI machine that had few). benchmarks.md has the fault counts measured.
    assert "hg" not in _mapping_flags("0")
    assert "hg" in _mapping_flags("1")
