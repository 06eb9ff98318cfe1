"""`sislab bench checkpoint`: both sides write the method's checkpoint, alternately; the ratio is
their medians' (speed itself is never asserted)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

TINY = ["--model", "ngf=4", "--model", "ndf=4", "--model", "num_upsampling_layers=normal",
        "--model", "spade_hidden=8", "--model", "num_d=1"]  # fmt: skip


def _bench(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "sislab.cli.main", "bench", "checkpoint", "spade", "--size",
         "32x32", "--json", *TINY, *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_has_each_sides_writes_and_their_ratio() -> None:
    out = _bench("--repeats", "3")
    assert (out["method"], out["height"], out["width"]) == ("spade", 32, 32)
    assert len(out["sislab_s"]) == len(out["plain_s"]) == 3
    assert out["ratio"] == pytest.approx(
        statistics.median(out["sislab_s"]) / statistics.median(out["plain_s"])
    )
    # The tiny model's state (networks and both optimisers' moments): a few MB.
    assert 0 < out["state_mb"] < 20
    wider = _bench("--repeats", "1", "--model", "spade_hidden=16")
    assert wider["state_mb"] > out["state_mb"]
