"""`sislab bench train`: the switches and --model reach the benchmark, and the JSON carries the
FLOP/s fields (one tiny iteration; speed itself is never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from sislab.cli.main import build_parser
from sislab.host_allocator import ALLOCATOR_ENV, tcmalloc_library
from sislab.huge_pages import THP_ENV
from sislab.trainers.bench_flops import PEAK_TFLOPS, peak_tflops

TINY = ["--model", "ngf=4", "--model", "ndf=4", "--model", "num_upsampling_layers=normal",
        "--model", "spade_hidden=8", "--model", "num_d=1"]  # fmt: skip


def _sislab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sislab.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_parser_passes_the_switches() -> None:
    args = build_parser().parse_args(
        ["bench", "train", "scgan", "--model", "preset=cityscapes", "--model",
         "num_norm_candidates=4", "--compile", "--channels-last", "--precision", "bf16",
         "--no-reuse-host-memory", "--no-unfolded-convs"]
    )  # fmt: skip
    assert args.model == ["preset=cityscapes", "num_norm_candidates=4"]
    assert (args.compile, args.channels_last, args.precision) == (True, True, "bf16")
    assert args.reuse_host_memory is False and args.unfolded_convs is False
    defaults = build_parser().parse_args(["bench", "train", "spade"])
    # None = the spec's defaults, i.e. what a trial of the default spec runs.
    assert (defaults.compile, defaults.channels_last, defaults.precision) == (None, None, None)
    assert defaults.reuse_host_memory is None and defaults.unfolded_convs is None


def test_json_carries_flops_and_the_switches_used() -> None:
    # The command turns torch's huge pages on unless its environment says otherwise.
    env = {k: v for k, v in os.environ.items() if k != THP_ENV}
    result = _sislab("bench", "train", "spade", "--size", "64x64", "--iters", "1", "--warmup",
                     "0", "--device", "cpu", "--channels-last", "--precision", "bf16", "--json",
                     *TINY, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["precision"], out["channels_last"], out["compile"]) == ("bf16", True, False)
    assert out["unfolded_convs"] is True  # the spec's default
    assert out["huge_pages"].startswith("on")
    # The command re-executed itself with tcmalloc where this machine has it (`make` installs
    # it as root), as a trial's workers run.
    assert out["host_allocator"] == ("tcmalloc" if tcmalloc_library() else "glibc")
    # The spec's default, auto: glibc's malloc is told to keep memory only where it is the
    # allocator and the kernel ignores the huge pages.
    assert out["reuse_host_memory"] is (
        out["host_allocator"] == "glibc" and out["huge_pages"] != "on"
    )
    assert out["model"]["ngf"] == 4 and out["model"]["num_d"] == 1
    assert out["model_gflop_per_iter"] > 0
    expected = out["model_gflop_per_iter"] / out["median_s"] / 1e3
    assert abs(out["achieved_tflop_s"] - expected) <= 1e-9 * max(expected, 1.0)
    assert out["mfu"] is None and out["peak_tflop_s"] is None  # CPU: no peak table
    assert out["compile_s"] is None and len(out["iter_s"]) == 1


def test_glibc_with_huge_pages_off_keeps_freed_memory() -> None:
    env = {**os.environ, THP_ENV: "0", ALLOCATOR_ENV: "glibc"}
    result = _sislab("bench", "train", "spade", "--size", "64x64", "--iters", "1", "--warmup",
                     "0", "--device", "cpu", "--json", *TINY, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["host_allocator"], out["huge_pages"], out["reuse_host_memory"]) == (
        "glibc",
        "off",
        True,
    )


def test_bad_model_field_names_the_fields() -> None:
    result = _sislab("bench", "train", "spade", "--model", "ngff=4")
    assert result.returncode == 2
    assert "--model for spade: ngff" in result.stderr and "ngf" in result.stderr


def test_peak_table_matches_names_longest_first() -> None:
    keys = [key for key, _ in PEAK_TFLOPS]
    assert keys.index("H100 PCIe") < keys.index("H100") and keys.index("L40S") < keys.index("L4")
    assert peak_tflops(torch.device("cpu"), "bf16") is None
