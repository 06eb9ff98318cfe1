"""The papers' tiny ablation sweeps through `sislab run`'s path: VASIS noise x position, SC-GAN n x tau.

Both examples run as one sweep across methods (``search.methods``) whose base spec is the VASIS
example: each method's sub-space is its example's space plus, as one-value grids, the fields where
its example differs from the base switched to that method (SC-GAN's widths, preset, losses), so
every trial's spec is its example's. One sweep of eight trials instead of two of four: the sweep's
fixed costs are paid once, and four trials run at a time.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console
from ruamel.yaml import YAML

from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.search_spaces.space import METHOD_KEY
from sislab.search_spaces.trial_spec import trial_spec
from sislab.spec.loader import load_spec
from sislab.spec.spec import Spec
from sislab.trainers.mlflow_tracker import flatten

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
BASE_CASE = "vasis"


def _example(case: str, tmp: Path):
    """The example's data (with the case's space) and its validated spec."""
    example, space = CASES[case]
    yaml = YAML()
    data = yaml.load((EXAMPLES / example).read_text())
    if space is not None:
        data["search"]["space"] = space
    path = tmp / example
    with path.open("w") as handle:
        yaml.dump(data, handle)
    return data, load_spec(path)


def _own_fields(spec: Spec, base: Spec) -> dict:
    """Fields (dotted) where an example differs from the base example switched to its method."""
    switched = trial_spec(base, {METHOD_KEY: spec.method})
    mine = flatten(spec.model_dump(mode="json"))
    theirs = flatten(switched.model_dump(mode="json"))
    return {
        k: v
        for k, v in mine.items()
        if k != "name" and not k.startswith("search.") and theirs.get(k) != v
    }


@pytest.fixture(scope="module")
def sweep(ray_cluster, tmp_path_factory: pytest.TempPathFactory):
    """One sweep over both examples' spaces: the examples, the fields each case's trials take
    from their example, the outcome, and the trials' MLflow runs."""
    tmp = tmp_path_factory.mktemp("method-sweeps")
    examples = {case: _example(case, tmp) for case in CASES}
    base, base_spec = examples[BASE_CASE]
    methods, fixed = {}, {}
    for case, (data, spec) in examples.items():
        space = data["search"]["space"]
        fixed[case] = {k: v for k, v in _own_fields(spec, base_spec).items() if k not in space}
        methods[spec.method] = {**{k: {"grid": [v]} for k, v in fixed[case].items()}, **space}
    merged = dict(base)
    merged["name"] = "papers-ablations"
    merged["search"] = {"methods": methods, "max_concurrent_trials": 4}
    merged["resources"] = dict(base["resources"], cpus_per_worker=0.4)
    # No FID/KID (the examples' default): FID's sqrtm alone is ~15-30 s of CPU per trial, and
    # test_sweep.py covers evaluation in a sweep. Sample grids are still logged.
    merged["eval"] = dict(base["eval"], metrics=[])
    spec_path = tmp / "papers.yaml"
    with spec_path.open("w") as handle:
        YAML().dump(merged, handle)
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp, spec.name, tmp / "run")

    outcome = run_sweep(spec, spec_path, run_dir=run_dir, console=Console(quiet=True))

    state = run_dir.load_state()
    client = MlflowClient(state.tracking_uri)
    children = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{state.parent_run_id}'"
    )
    return SimpleNamespace(
        examples=examples, fixed=fixed, outcome=outcome, client=client, children=children
    )


def test_one_sweep_runs_both_examples(sweep) -> None:
    assert sweep.outcome.num_trials == 8 and sweep.outcome.num_errors == 0
    assert len(sweep.children) == 8
    methods = sorted(c.data.params["method"] for c in sweep.children)
    assert methods == sorted([spec.method for _, spec in sweep.examples.values()] * 4)


@pytest.mark.parametrize("case", sorted(CASES))
def test_example_sweep_records_every_configuration(sweep, case: str) -> None:
    (data, spec), client = sweep.examples[case], sweep.client
    children = [c for c in sweep.children if c.data.params["method"] == spec.method]
    keys = sorted(data["search"]["space"])
    seen = {tuple(c.data.params[k] for k in keys) for c in children}
    assert len(children) == 4 and len(seen) == 4
    for child in children:
        assert child.info.status == "FINISHED"
        assert client.get_metric_history(child.info.run_id, "train/loss_g")
        # Each trial's spec is its example's (e.g. SC-GAN's widths, not the base example's).
        # A loss that is off (no VGG19 weights in tests) is logged as 0, its effective value.
        off = child.data.tags["sislab.perceptual_loss"].startswith("off")
        for key, value in sweep.fixed[case].items():
            expected = "0" if key == "losses.perceptual" and off else str(value)
            assert child.data.params[key] == expected, key
