"""The papers' tiny ablation sweeps through `sislab run`'s path: VASIS noise x position, SC-GAN n x tau."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console
from ruamel.yaml import YAML

from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.spec.loader import load_spec

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CASES = {
    # VASIS Table 4's two switches, 2 x 2 of the example's 2 x 4 grid.
    "vasis": (
        "vasis_noise_position.yaml",
        {
            "model.semantic_noise": {"grid": [False, True]},
            "model.position_code": {"grid": ["none", "learn"]},
        },
    ),
    # SC-GAN: n in {1, 2} x two temperatures, as the example.
    "scgan": ("scgan_candidates.yaml", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_example_sweep_records_every_configuration(ray_cluster, tmp_path: Path, case: str) -> None:
    example, space = CASES[case]
    yaml = YAML()
    data = yaml.load((EXAMPLES / example).read_text())
    if space is not None:
        data["search"]["space"] = space
    data["resources"]["cpus_per_worker"] = 0.4
    data["search"]["max_concurrent_trials"] = 2
    spec_path = tmp_path / example
    with spec_path.open("w") as handle:
        yaml.dump(data, handle)
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")

    outcome = run_sweep(spec, spec_path, run_dir=run_dir, console=Console(quiet=True))

    assert outcome.num_trials == 4 and outcome.num_errors == 0
    state = run_dir.load_state()
    client = MlflowClient(state.tracking_uri)
    children = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{state.parent_run_id}'"
    )
    keys = sorted(data["search"]["space"])
    seen = {tuple(c.data.params[k] for k in keys) for c in children}
    assert len(children) == 4 and len(seen) == 4
    for child in children:
        assert child.info.status == "FINISHED"
        assert client.get_metric_history(child.info.run_id, "train/loss_g")
