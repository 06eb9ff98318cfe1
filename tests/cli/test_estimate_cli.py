"""`sislab estimate` and `sislab run --estimate`: the command prints the estimate's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sislab.cli.main import build_parser, main

from ..orchestrator.test_estimate import SPEC


def test_estimate_json_has_the_parent_metrics_and_prices(tmp_path: Path, capsys) -> None:
    spec = dict(SPEC, search={"space": {"train.lr_g": {"grid": [1e-4, 2e-4]}}})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = ["estimate", str(path), "--json", "--estimate-iters", "1", "--estimate-warmup", "0"]
    assert main([*args, "--num-cpus", "4"]) == 0
    data = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert data["num_trials"] == 2 and len(data["configs"]) == 1 and data["concurrency"] == 3
    (config,) = data["configs"]
    hours = 1.1 * sum(config["trial_wall_s"]) / 3600
    assert data["cost/estimate_cpu_hours"] == pytest.approx(hours)
    assert data["cost/estimate_total"] == pytest.approx(0.05 * hours)
    assert data["prices"]["currency"] == "EUR"


def test_run_estimates_on_a_local_ray_only_unless_told() -> None:
    parse = build_parser().parse_args
    assert parse(["run", "s.yaml"]).estimate is None  # local Ray: on
    assert parse(["run", "s.yaml", "--no-estimate"]).estimate is False
    assert parse(["run", "s.yaml", "--address", "auto", "--estimate"]).estimate is True
