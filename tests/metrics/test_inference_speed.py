"""Generator inference speed (GroupDNet's FPS) in model summaries."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from sislab.datasets.presets import preset_geometry
from sislab.errors import SpecError
from sislab.metrics.summary import inference_speed
from sislab.models.methods.spade import SpadeConfig


def test_speed_is_positive_and_finite() -> None:
    cfg = SpadeConfig(ngf=8, spade_hidden=8, use_vae=True)
    speed = inference_speed("spade", cfg, preset_geometry("synthetic"), "cpu", 2, 1, 2)
    assert speed.images_per_s > 0 and math.isfinite(speed.images_per_s)
    assert speed.device.startswith("cpu") and speed.batch_size == 2 and speed.iterations == 2


def test_bad_counts_are_refused() -> None:
    with pytest.raises(SpecError, match="iterations 0"):
        inference_speed("spade", None, preset_geometry("synthetic"), "cpu", iterations=0)


def test_cli_reports_speed_with_device_and_batch() -> None:
    argv = ["models", "summary", "spade", "--dataset", "synthetic", "--fps", "--device", "cpu"]
    argv += ["--warmup", "0", "--iterations", "1"]
    run = subprocess.run(
        [sys.executable, "-m", "sislab.cli.main", *argv, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    speed = json.loads(run.stdout)["speed"]
    assert speed["images_per_s"] > 0 and math.isfinite(speed["images_per_s"])
    assert speed["batch_size"] == 1 and speed["device"].startswith("cpu")
