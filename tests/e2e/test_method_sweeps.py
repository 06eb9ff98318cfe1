"""Every training procedure trains with 2 DDP workers through `sislab run`'s sweep path (issue 19).

One sweep over ``search.methods``, one trial per procedure: VA-CLADE (the SPADE family's
procedure, CLADE's class-wise norms), VA-OASIS (OASIS's), GroupDNet's and SC-GAN's. Together the
two VASIS trials cover the VASIS switches that change what is trained (semantic noise, its
channels, mode and distribution, the fixed and relative position codes). Its base spec is the
VASIS example; SC-GAN's trial takes the SC-GAN example's widths and preset with its SCC operator
and batch norm, in bf16 autocast (the Ray trial in bf16 that scripts/gpu_acceptance.py's sweep
check also runs). Every trial has 2 workers (gloo, cross-rank batch norm) at 64x64, one iteration
of a global batch of 2, no evaluation metrics.

The Ray path (Tune trial, Train controller and workers, MLflow runs) is the same code for every
method; what differs per method is the procedure the worker builds and wraps in DDP, and
tests/trainers/test_ddp_equivalence.py checks that on 2 gloo ranks for SPADE+VAE, CLADE+ICPE,
VA-SPADE with the learnable position code, OASIS, GroupDNet and SC-GAN (2 ranks x B equal 1 rank x
2B, weight for weight). A Ray trial per method (nine) cost the suite ~4 minutes of its two cores
for start-ups, not coverage; scripts/gpu_acceptance.py runs all nine through the sweep on a GPU
machine. GroupDNet's Table 1 baselines and group-decrease schedules and SC-GAN's other operators
train in-process (tests/trainers/test_groupdnet_procedure.py, test_scgan_procedure.py); the
suites' configurations are checked against the papers' tables in
tests/search_spaces/test_suites.py.
"""

from __future__ import annotations

import time
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

# GroupDNet at 64x64: the 'normal' upsampling keeps the encoder's last map at 2x2 (its batch
# norm needs more than one value per channel) and widths/groups divisible by the 4 classes.
GROUPDNET_TINY = {
    "model.ngf": 4,
    "model.encoder_ndf": 4,
    "model.ndf": 4,
    "model.num_d": 1,
    "model.n_layers_d": 2,
    "model.num_upsampling_layers": "normal",
    "model.cg_mlp_style": "cityscapes",
}
# Sub-spaces next to the VASIS example's: one-value grids are fixed fields, longer grids trials.
EXTRA_METHODS: dict[str, dict] = {
    # Table 5's variants: one noise channel, random noise, the absolute position code.
    "va-clade": {
        "model.semantic_noise": {"grid": [True]},
        "model.noise_channels": {"grid": ["one"]},
        "model.noise_mode": {"grid": ["rand"]},
        "model.position_code": {"grid": ["fix"]},
    },
    # Additive normal noise and the relative position code; zero padding, as VA-OASIS's reflect
    # padding needs a latent of at least 3x3 (96x96 and up).
    "va-oasis": {
        "model.padding": {"grid": ["zeros"]},
        "model.noise_mode": {"grid": ["plus"]},
        "model.noise_distribution": {"grid": ["normal"]},
        "model.position_code": {"grid": ["relative"]},
        "model.z_dim": {"grid": [4]},
    },
    "groupdnet": {k: {"grid": [v]} for k, v in GROUPDNET_TINY.items()},
}
SCGAN_OPS = "scc_bn"  # SCC with BN (scc_scn: the example's default, in-process tests)
SCGAN_PRECISION = "bf16"  # the others train in fp32
METHODS = ["va-clade", "va-oasis", "groupdnet", "scgan"]
NUM_TRIALS = len(METHODS)
SWEEP_SETTINGS = {
    # 2 workers of 0.2 CPU and a 0.1 CPU driver per trial: all 4 trials at once on 2 CPUs.
    "resources": {"num_workers": 2, "cpus_per_worker": 0.2},
    "max_concurrent_trials": 4,
}


def _load(example: str) -> dict:
    return YAML().load((EXAMPLES / example).read_text())


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


def _two_worker_spec(data: dict, name: str) -> dict:
    data = dict(data)
    data["name"] = name
    data["train"] = dict(data["train"], batch_size=2, max_iters_per_epoch=1)
    data["resources"] = dict(data["resources"], **SWEEP_SETTINGS["resources"])
    data["eval"] = dict(data.get("eval") or {}, metrics=[])
    return data


def _run(data: dict, tmp: Path, name: str):
    spec_path = tmp / f"{name}.yaml"
    with spec_path.open("w") as handle:
        YAML().dump(data, handle)
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp, spec.name, tmp / name)
    started = time.perf_counter()
    outcome = run_sweep(spec, spec_path, run_dir=run_dir, console=Console(quiet=True))
    seconds = time.perf_counter() - started
    state = run_dir.load_state()
    client = MlflowClient(state.tracking_uri)
    children = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{state.parent_run_id}'"
    )
    print(f"{name}: {outcome.num_trials} trials with 2 workers in {seconds:.0f} s")
    return SimpleNamespace(outcome=outcome, client=client, children=children)


@pytest.fixture(scope="module")
def methods_sweep(ray_cluster, tmp_path_factory: pytest.TempPathFactory):
    """Every procedure and VASIS switch in one sweep of 2-worker trials."""
    tmp = tmp_path_factory.mktemp("method-sweeps")
    base = _load("vasis_noise_position.yaml")
    scgan = _load("scgan_candidates.yaml")
    base_spec, scgan_spec = (Spec.model_validate(d) for d in (base, scgan))
    scgan_fixed = {
        k: {"grid": [v]}
        for k, v in _own_fields(scgan_spec, base_spec).items()
        if k.startswith("model.") or k.startswith("losses.")
    }
    methods = {
        "scgan": {
            **scgan_fixed,
            "model.ops": {"grid": [SCGAN_OPS]},
            "train.precision": {"grid": [SCGAN_PRECISION]},
        },
        **EXTRA_METHODS,
    }
    data = _two_worker_spec(base, "every-procedure-ddp")
    data["search"] = {"methods": methods, "max_concurrent_trials": 4}
    return _run(data, tmp, "every-procedure-ddp")


def test_every_procedure_trains_with_two_workers(methods_sweep) -> None:
    sweep = methods_sweep
    assert sweep.outcome.num_errors == 0 and sweep.outcome.num_trials == NUM_TRIALS
    assert len(sweep.children) == NUM_TRIALS
    assert sorted({c.data.params["method"] for c in sweep.children}) == sorted(METHODS)
    for child in sweep.children:
        assert child.info.status == "FINISHED", child.data.params["method"]
        assert child.data.params["resources.num_workers"] == "2"
        # Losses are means over both ranks; one iteration was logged.
        assert sweep.client.get_metric_history(child.info.run_id, "train/loss_g")


def test_every_variant_and_switch_ran(methods_sweep) -> None:
    params = [c.data.params for c in methods_sweep.children]

    def values(method: str, key: str) -> set[str]:
        return {p[key] for p in params if p["method"] == method}

    assert values("scgan", "model.ops") == {SCGAN_OPS}
    assert values("scgan", "train.precision") == {SCGAN_PRECISION}
    assert {p["train.precision"] for p in params if p["method"] != "scgan"} == {"fp32"}
    vasis = [p for p in params if p["method"].startswith("va-")]
    switches = {
        "model.semantic_noise": {"True"},
        "model.noise_channels": {"one"},
        "model.noise_mode": {"rand", "plus"},
        "model.noise_distribution": {"normal"},
        # "learn" (a trained parameter): test_ddp_equivalence's VA-SPADE case.
        "model.position_code": {"fix", "relative"},
    }
    for key, wanted in switches.items():
        assert wanted <= {p[key] for p in vasis}, key
