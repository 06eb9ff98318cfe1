"""A failed trial leaves a readable record: error line, description, traceback artifact, FAILED,
also when it failed before rank 0 opened its run; the final table shows the line and what varied."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

from mlflow.tracking import MlflowClient
from rich.console import Console

from sislab.orchestrator.live_view import LiveView
from sislab.orchestrator.mlflow_store import prepare_sqlite_store
from sislab.orchestrator.parent_run import varied_keys
from sislab.orchestrator.summary import trial_summaries
from sislab.orchestrator.tracking import TrialRunStatus
from sislab.spec.loader import spec_from_dict
from sislab.trainers.run_names import short_keys
from sislab.trainers.trial_run import open_trial_run

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/x/sislab/trainers/loop.py", line 200, in run_training\n'
    "sislab.errors.DataError: corrupt sample in shard train/part-00000.parquet row 2\n"
    "  Fix: set dataset.on_corrupt: skip\n"
)
LINE = "DataError: corrupt sample in shard train/part-00000.parquet row 2 Fix: set dataset.on_corrupt: skip"


def _failed_trial(tmp_path: Path, trial_id: str) -> SimpleNamespace:
    error_file = tmp_path / f"{trial_id}-error.txt"
    error_file.write_text(f"Failure # 1 (occurred at 2026-12-04_23-00-00)\n{TRACEBACK}")
    return SimpleNamespace(
        trial_id=trial_id,
        config={"method": "clade", "train.lr_g": 5e-4},
        error_file=str(error_file),
        local_path=str(tmp_path),
    )


def test_failed_trials_get_error_description_artifact_and_status(tmp_path: Path) -> None:
    prepare_sqlite_store(tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    parent = client.create_run(experiment).info.run_id
    opened = open_trial_run(client, experiment, parent, "opened", {"method": "spade"}, {})
    status = TrialRunStatus(uri, experiment, parent)

    status.on_trial_error(0, [], _failed_trial(tmp_path, "opened"))
    status.on_trial_error(0, [], _failed_trial(tmp_path, "never-opened"))  # no run yet

    rows = {r.trial_id: r for r in trial_summaries(uri, experiment, parent)}
    assert set(rows) == {"opened", "never-opened"}
    for row in rows.values():
        run = client.get_run(row.run_id)
        assert run.info.status == "FAILED"
        assert row.error == LINE
        assert LINE in run.data.tags["mlflow.note.content"]
        local = client.download_artifacts(row.run_id, "error.txt", str(tmp_path / row.trial_id))
        assert Path(local).read_text().strip() == TRACEBACK.strip()
    assert rows["opened"].run_id == opened
    # The run created on failure carries the varied fields, so the UI's columns show them.
    assert rows["never-opened"].params == {"method": "clade", "train.lr_g": "0.0005"}


def test_live_view_shows_varied_fields_as_columns_and_the_error_line(tmp_path: Path) -> None:
    out = io.StringIO()
    view = LiveView(2, Console(file=out, force_terminal=False, width=400))
    ok = SimpleNamespace(trial_id="t1", config={"train.lr_g": 1e-4, "method": "spade"})
    view.on_trial_start(0, [ok], ok)
    failed = _failed_trial(tmp_path, "t2")
    view.on_trial_start(0, [failed], failed)
    view.on_trial_error(0, [failed], failed)

    assert view.varied() == {"method": "method", "train.lr_g": "lr_g"}
    assert f"[t2] failed: {LINE}" in out.getvalue()
    wide = Console(file=io.StringIO(), width=400)
    wide.print(view.table())
    lines = wide.file.getvalue().splitlines()
    header = next(line for line in lines if "status" in line)
    positions = [header.index(f" {name} ") for name in ("trial", "status", "method", "lr_g")]
    assert positions == sorted(positions) and "config" not in header
    assert any("ERROR: DataError: corrupt sample" in line and "clade" in line for line in lines)
    assert any("spade" in line and "0.0001" in line for line in lines)


def test_varied_keys_of_a_method_sweep_put_the_method_first() -> None:
    spec = spec_from_dict(
        {
            "name": "methods",
            "search": {
                "space": {"train.lr_g": {"grid": [1e-4, 2e-4]}},
                "methods": {"spade": {"model.ngf": {"grid": [8]}}, "clade": {}},
                "repeats": 2,
            },
        }
    )
    keys = varied_keys(spec)
    assert keys[0] == "method"
    assert set(keys) == {"method", "train.lr_g", "model.ngf", "train.seed"}
    assert short_keys(["model.ngf", "train.lr_g", "a.x", "b.x"]) == {
        "model.ngf": "ngf", "train.lr_g": "lr_g", "a.x": "a.x", "b.x": "b.x",
    }  # fmt: skip
