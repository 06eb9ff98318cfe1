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
    # SPADE's official recipe changes Adam's beta2 from the field default (and says so).
    assert sislab("validate", str(spec)).stdout.strip().splitlines() == [
        "preflight: spade: recipe official (generic table, `sislab recipe show spade`) sets "
        "train.betas=[0.0, 0.9]",
        "ok",
    ]
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


def _tiny_run_folder(root: Path, tracking_uri: str | None = None) -> tuple[str, str]:
    """A run folder whose store holds a parent run and the sweep's shared view."""
    from mlflow.tracking import MlflowClient

    from sislab.orchestrator.mlflow_store import prepare_sqlite_store
    from sislab.orchestrator.mlflow_ui import preset_runs_view
    from sislab.orchestrator.run_dir import RunDir, SweepState

    run_dir = RunDir.create(root.parent, "ui", root)
    prepare_sqlite_store(run_dir.db_path)
    client = MlflowClient(run_dir.default_tracking_uri)
    experiment = client.create_experiment("ui", artifact_location=run_dir.artifact_root)
    parent = client.create_run(experiment).info.run_id
    preset_runs_view(client, experiment, parent, ["train.lr_g"], ["eval/fid"])
    uri = tracking_uri or run_dir.default_tracking_uri
    state = SweepState(name="ui", tracking_uri=uri, experiment_id=experiment,
                       parent_run_id=parent, storage_path="")  # fmt: skip
    run_dir.save_state(state)
    return experiment, parent


def test_ui_answers_and_prints_the_runs_table_url(tmp_path: Path) -> None:
    import socket
    import urllib.request

    experiment, parent = _tiny_run_folder(tmp_path / "run")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ui = subprocess.Popen(
        [sys.executable, "-m", "sislab.cli.main", "ui", str(tmp_path / "run"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        lines = []
        for line in ui.stdout:  # ends when the command exits, e.g. the server failed to start
            lines.append(line)
            if line.startswith("http://"):
                break
        assert any("--workers 1" in line for line in lines), lines
        url = lines[-1].strip()
        assert url == (
            f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs?workflowType="
            f"machine_learning&viewStateShareKey=sislab-{parent[:12]}"
        )
        with urllib.request.urlopen(url.split("#")[0], timeout=30) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        ui.terminate()  # sislab ui stops its server on SIGTERM
        assert ui.wait(timeout=60) is not None
    with socket.socket() as sock:  # the server is gone: its port is free again
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_ui_of_a_sweep_on_a_server_prints_the_servers_url(tmp_path: Path) -> None:
    experiment, _ = _tiny_run_folder(tmp_path / "run", "http://user:secret@mlflow.lab:5000")
    result = sislab("ui", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "secret" not in result.stdout
    assert result.stdout.strip().endswith(
        f"http://***@mlflow.lab:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"
    )


def test_ui_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    _tiny_run_folder(tmp_path / "run")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = sislab("ui", str(tmp_path / "run"), "--port", str(port))
    assert result.returncode == 2
    assert f"port {port} is in use" in result.stdout
