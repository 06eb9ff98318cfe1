"""Security: credentials come only from the environment (a URI holding one is refused); an MLflow
server run as `sislab mlflow serve --auth` answers 401 without them; a tiny sweep against it, with
the credentials only in the driver's environment, records its runs and writes no credential to any
file (run folder, MLflow store, artifacts, server log, auth folder, Ray results and logs)."""

from __future__ import annotations

import base64
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console

from sislab.chaos.servers import MlflowTestServer
from sislab.errors import SpecError
from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.spec.loader import load_spec, validate_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAKE_SECRET = "sislab-fake-secret-123"
FAKE_PASSWORD = "sislab-fake-password-456"
ADMIN_PASSWORD = "sislab-admin-password-789"
# Set at import, before the session's Ray starts, so that its workers inherit them like real
# credentials from the environment (moto tests accept any key). The MLflow ones are stale: the
# auth server refuses them, so a trial run is recorded only if the driver's current credentials
# reach the workers (as on a remote cluster, whose nodes never see the driver's environment).
os.environ["AWS_SECRET_ACCESS_KEY"] = FAKE_SECRET
os.environ["MLFLOW_TRACKING_USERNAME"] = "sislab"
os.environ["MLFLOW_TRACKING_PASSWORD"] = FAKE_PASSWORD

SPEC = """\
name: secrets
method: spade
dataset:
  uri: synthetic://shapes?size=32&classes=4&num=4&val=2
  image_size: [32, 32]
model: {{ngf: 4, ndf: 4}}
train: {{epochs: 1, lr_decay_epochs: 0, batch_size: 2, max_iters_per_epoch: 1, log_every_iters: 1}}
losses: {{perceptual: 0}}
eval: {{num_grid_samples: 1, metrics: [kid]}}
resources: {{num_workers: 1, cpus_per_worker: 0.5}}
tracking: {{uri: "{uri}"}}
"""


def _files_containing(
    roots: list[Path], needles: list[bytes], since: float, own: Path
) -> list[str]:
    hits = []
    for root in roots:
        for path in root.rglob("*"):
            try:
                if path == own or not path.is_file() or path.stat().st_mtime < since:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            hits += [f"{path}: {n.decode()}" for n in needles if n in data]
    return hits


def test_uri_with_credentials_is_refused_without_echoing_it(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC.format(uri=f"http://sislab:{FAKE_PASSWORD}@127.0.0.1:5000"))
    with pytest.raises(
        SpecError, match=r"tracking\.uri: a URI in a spec must not hold credentials"
    ):
        load_spec(spec_path)
    problems = validate_file(spec_path)
    assert len(problems) == 1 and FAKE_PASSWORD not in problems[0]
    assert "MLFLOW_TRACKING_PASSWORD" in problems[0]


def _status(uri: str, user_password: str | None) -> int:
    request = urllib.request.Request(uri + "/api/2.0/mlflow/experiments/search?max_results=1")
    if user_password is not None:
        token = base64.b64encode(user_password.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


def test_credentials_never_reach_files(
    ray_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ray_cluster.is_initialized()  # started with the stale MLflow credentials
    started = time.time()
    server = MlflowTestServer(tmp_path / "mlflow", admin_password=ADMIN_PASSWORD)
    (tmp_path / "mlflow").mkdir()
    server.start()
    try:
        # The basic-auth app: nothing without credentials, nothing with wrong ones, and the
        # admin user got the password sislab gave it.
        assert _status(server.uri, None) == 401
        assert _status(server.uri, f"sislab:{FAKE_PASSWORD}") == 401
        assert _status(server.uri, f"admin:{FAKE_PASSWORD}") == 401
        assert _status(server.uri, f"admin:{ADMIN_PASSWORD}") == 200
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        spec_path = tmp_path / "spec.yaml"
        spec_path.write_text(SPEC.format(uri=server.uri))
        spec = load_spec(spec_path)
        run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")
        outcome = run_sweep(spec, spec_path, run_dir=run_dir, console=Console(quiet=True))
        assert outcome.num_trials == 1 and outcome.num_errors == 0
        # Parent (driver) and trial (rank 0, a Ray worker) runs are recorded through the auth
        # server, read back with the same credentials; none in a param or tag.
        client = MlflowClient(server.uri)
        runs = client.search_runs([client.get_experiment_by_name("secrets").experiment_id])
        assert len(runs) == 2
        trial_runs = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
        assert len(trial_runs) == 1 and "train/loss_g" in trial_runs[0].data.metrics
        for run in runs:
            recorded = [*run.data.params.items(), *run.data.tags.items()]
            assert not [kv for kv in recorded if ADMIN_PASSWORD in str(kv)]
    finally:
        server.stop()
    ray_session = Path(ray_cluster._private.worker._global_node.get_session_dir_path())
    roots = [tmp_path, ray_session / "logs"]
    needles = [FAKE_SECRET.encode(), FAKE_PASSWORD.encode(), ADMIN_PASSWORD.encode()]
    leaks = _files_containing(roots, needles, started, spec_path)
    # Ray's runtime-env agent log included: Tune no longer copies AWS_* into runtime envs.
    assert not leaks, "credentials written to:\n" + "\n".join(leaks)
