"""The Jobs API submission: runtime environment by name, credentials refused, never printed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sislab.cli import submit as submit_cli
from sislab.cluster import jobs
from sislab.errors import ClusterError

SPEC = "name: remote\nmethod: spade\ntracking: {uri: http://mlflow:5000}\nstorage: s3://runs/x\n"


def test_runtime_env_passes_variables_by_name_and_prints_no_values(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    staging = tmp_path / "stage"
    staging.mkdir()
    environ = {"SISLAB_LAB": "value-not-printed", "HOME": "/root"}
    submission = jobs.build_submission(
        spec, staging, pip=["lpips==0.1.4"], env_names=["SISLAB_LAB"], environ=environ
    )
    assert (staging / "spec.yaml").read_text() == SPEC
    assert submission.entrypoint == (
        "python -m sislab.cli.main run spec.yaml --address auto --job --runs-root ~/sislab-runs"
    )
    env = submission.runtime_env()
    assert env == {
        "working_dir": str(staging),
        "pip": ["lpips==0.1.4"],
        "env_vars": {"SISLAB_LAB": "value-not-printed"},
    }
    assert "value-not-printed" not in json.dumps(submission.printable_runtime_env())


@pytest.mark.parametrize(
    "name",
    ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "MLFLOW_TRACKING_PASSWORD",
     "HF_TOKEN", "WANDB_API_KEY"],
)  # fmt: skip
def test_credential_names_are_refused(tmp_path: Path, name: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    with pytest.raises(ClusterError, match=f"refusing to put {name}"):
        jobs.build_submission(spec, tmp_path, env_names=[name], environ={name: "x"})


def test_project_working_dir_and_shipped_package(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    spec = project / "specs" / "a.yaml"
    spec.write_text(SPEC)
    submission = jobs.build_submission(
        spec, tmp_path, working_dir=project, environ={}, ship_sislab=True
    )
    assert submission.spec_relpath == "specs/a.yaml"
    assert submission.runtime_env()["working_dir"] == str(project.resolve())
    assert Path(submission.runtime_env()["py_modules"][0], "cli", "main.py").is_file()
    with pytest.raises(ClusterError, match="outside the working dir"):
        jobs.build_submission(spec, tmp_path, working_dir=tmp_path / "other", environ={})
    with pytest.raises(ClusterError, match="not set in this shell"):
        jobs.build_submission(spec, tmp_path, env_names=["SISLAB_NOPE"], environ={})


def test_submit_cli_refuses_a_secret_before_contacting_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    parser = argparse.ArgumentParser()
    submit_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["submit", str(spec), "--address", "http://127.0.0.1:1", "--env", "AWS_SECRET_ACCESS_KEY"]
    )
    with pytest.raises(ClusterError, match="refusing to put AWS_SECRET_ACCESS_KEY"):
        args.handler(args)
    assert "s3cr3t-value" not in capsys.readouterr().out
