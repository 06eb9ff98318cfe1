"""The `sislab` command as a user runs it: exit codes and printed output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BAD_SPEC = """\
name: three-mistakes
method: spade
train:
  lr_gg: 1.0e-4
  lr_d: -4.0e-4
  batch_size: 15
resources:
  num_workers: 2
"""


def sislab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sislab.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_validate_reports_three_mistakes_with_lines(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD_SPEC)
    result = sislab("validate", str(spec))
    assert result.returncode == 2
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3, result.stdout
    assert lines[0].startswith(f"{spec}:4: train.lr_gg: unknown field; did you mean 'lr_g'?")
    assert lines[1].startswith(f"{spec}:5: train.lr_d: must be greater than 0")
    assert lines[2].startswith(f"{spec}:6: train.batch_size:")
    assert "not divisible by resources.num_workers=2" in lines[2]
    assert "Traceback" not in result.stderr


def test_validate_ok_and_missing_file(tmp_path: Path) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text("name: fine\nresources: {cpus_per_worker: 0.5}\n")  # fits 2 CPUs
    assert sislab("validate", str(spec)).stdout.strip() == "ok"
    missing = sislab("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stdout


def test_models_summary_json_matches_paper() -> None:
    result = sislab("models", "summary", "spade", "--dataset", "cityscapes", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert abs(summary["generator_params"] / 93.05e6 - 1) < 0.01  # VASIS Table 3
    assert abs(summary["discriminator_params"] / 5.60e6 - 1) < 0.01
    assert summary["encoder_params"] == 0
    assert abs(summary["generator_gflops"] / 281.64 - 1) < 0.01


def test_unknown_dataset_is_a_clear_error() -> None:
    result = sislab("models", "summary", "spade", "--dataset", "citiscapes")
    assert result.returncode == 2
    assert "cityscapes" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("dataset", ["cityscapes", "ade20k"])
def test_groupdnet_summary_follows_the_dataset_without_a_preset(
    dataset: str, capsys: pytest.CaptureFixture
) -> None:
    from sislab.cli.main import main

    assert main(["models", "summary", "groupdnet", "--dataset", dataset, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["preset"] == dataset  # preset auto: the one made for the dataset's classes
    assert summary["generator_params"] > 0
