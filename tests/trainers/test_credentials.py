"""Tracking credentials travel from the driver's environment into a worker's, never in a repr."""

from __future__ import annotations

import os

import pytest

from sislab.trainers.credentials import TrackingCredentials, with_credentials


def test_from_environ_takes_only_mlflow_credentials() -> None:
    environ = {"MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_TRACKING_PASSWORD": "s3cret-pw", "X": "1"}
    credentials = TrackingCredentials.from_environ(environ)
    assert credentials is not None
    assert dict(credentials.values) == {
        "MLFLOW_TRACKING_USERNAME": "ada",
        "MLFLOW_TRACKING_PASSWORD": "s3cret-pw",
    }
    assert "s3cret-pw" not in repr(credentials) and "ada" not in repr(credentials)
    assert TrackingCredentials.from_environ({"X": "1"}) is None


def test_worker_function_exports_them_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "stale")
    seen = {}
    credentials = TrackingCredentials((("MLFLOW_TRACKING_PASSWORD", "fresh-pw"),))
    worker = with_credentials(lambda config: seen.update(config, pw=os.environ[
        "MLFLOW_TRACKING_PASSWORD"]), credentials)  # fmt: skip
    worker({"a": 1})
    assert seen == {"a": 1, "pw": "fresh-pw"}
    assert "fresh-pw" not in repr(worker)
    plain = object()
    assert with_credentials(plain, None) is plain  # type: ignore[arg-type]
