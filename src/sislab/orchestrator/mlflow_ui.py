"""The MLflow UI of a sweep: the URL that opens its runs table, with the sweep's columns preset.

MLflow 3 opens an experiment on its GenAI overview (traces, tokens: all empty for a GAN sweep); the
query ``workflowType=machine_learning`` opens the classic runs table instead. The runs table's
columns come from a *shared view*: the UI reads an experiment tag ``mlflow.sharedViewState.KEY``
(JSON of the view state) when the URL carries ``viewStateShareKey=KEY``, which is what its own
"Share" button writes. sislab writes one per sweep showing the varied params and the sweep's metric.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Sequence

from mlflow.tracking import MlflowClient

RUNS_TABLE_QUERY = "workflowType=machine_learning"
SHARED_VIEW_TAG = "mlflow.sharedViewState."  # + key; read by the UI's experiment page
SHARE_KEY_PARAM = "viewStateShareKey"
# Hosts a server binds to that a browser cannot open: print this machine's name instead.
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def view_key(parent_run_id: str) -> str:
    """The shared-view key of a sweep (one per parent run, so sweeps sharing an experiment keep
    their own columns)."""
    return f"sislab-{parent_run_id[:12]}"


def base_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` of a server listening on ``host`` (a wildcard becomes the hostname)."""
    shown = socket.gethostname() if host in _WILDCARD_HOSTS else host
    if ":" in shown:  # an IPv6 literal
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def runs_table_url(server_url: str, experiment_id: str, share_key: str | None = None) -> str:
    """The URL opening an experiment's runs table (with a shared view's columns, if given)."""
    url = f"{server_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{RUNS_TABLE_QUERY}"
    return f"{url}&{SHARE_KEY_PARAM}={share_key}" if share_key else url


def _column(kind: str, key: str) -> str:
    # The UI's canonical column id: kind, then the key in backquotes (its makeCanonicalSortKey).
    return f"{kind}.`{key}`"


def preset_runs_view(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    varied: Sequence[str],
    metrics: Sequence[str],
) -> str:
    """Write the sweep's shared view (varied params and metrics as columns) to the experiment;
    returns its key. The table keeps MLflow's order by start time: sorted by a metric, it would
    no longer nest the trials under their sweep.

    Args:
        client: MLflow client of the sweep's store.
        experiment_id: The sweep's experiment.
        parent_run_id: The sweep's parent run (names the view).
        varied: Dotted param keys the sweep varies (``method``, ``train.lr_g``).
        metrics: Metric keys to show.
    """
    columns = [_column("params", k) for k in varied] + [_column("metrics", m) for m in metrics]
    state = {"selectedColumns": columns}
    key = view_key(parent_run_id)
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(state))
    return key


def experiment_tags(server_url: str, experiment_id: str) -> dict[str, str]:
    """An experiment's tags read over the server's REST API (no MLflow import: ``sislab ui``
    prints its URL as soon as the server answers); empty when the server does not answer."""
    url = f"{server_url.rstrip('/')}/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            experiment = json.load(answer)["experiment"]
    except (OSError, ValueError, KeyError):
        return {}
    return {t["key"]: t["value"] for t in experiment.get("tags", [])}


def wait_until_ready(url: str, timeout_s: float, alive=lambda: True) -> float | None:
    """Poll ``URL/health`` until it answers 200; the seconds that took, or None on timeout or
    when ``alive()`` turns False (the server exited)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s and alive():
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.1)  # polling a server that is still importing MLflow
    return None
