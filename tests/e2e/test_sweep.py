"""End to end on the session's Ray: spec -> Tune sweep of Train trials -> MLflow runs.

The dataset is a folder of Parquet shards with one corrupt row, streamed through Ray Data with
``on_corrupt: skip``: one sweep covers the MLflow records of issue 3 and the streaming of issue 4.
A third trial reads the same data with ``on_corrupt: error`` and fails at run time (issue 19): its
error's own line reaches the console table, its run's tags, description and ``error.txt``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from rich.console import Console

from sislab.datasets.classes import voc_colour
from sislab.datasets.manifest import ClassInfo, Manifest, SplitInfo, save_manifest
from sislab.datasets.shards import Row, write_shard
from sislab.datasets.storage import resolve
from sislab.host_allocator import tcmalloc_library
from sislab.orchestrator.estimate import ConfigEstimate, SweepEstimate
from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.spec.loader import load_spec
from sislab.trainers.run_params import is_infrastructure
from sislab.trainers.run_source import git_commit
from sislab.trainers.trial_inputs import manifest_digest

pytestmark = pytest.mark.e2e

SIZE = 64
FAILING_LR = 5.0e-4
LOSSES = (
    "train/loss_g",
    "train/loss_d",
    "train/g_gan",
    "train/g_feat",
    "train/d_real",
    "train/d_fake",
)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _rows(rng: np.random.Generator, prefix: str, count: int, corrupt: int | None = None) -> list:
    rows = []
    for i in range(count):
        image = _png(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
        if i == corrupt:
            image = image[:40]  # a truncated PNG
        label = _png(rng.integers(0, 3, (SIZE, SIZE), dtype=np.uint8))
        rows.append(Row(f"{prefix}{i}", image, label, None, SIZE, SIZE))
    return rows


def _write_dataset(root: Path) -> list[str]:
    """8 train rows in 2 shards (row 2 of shard 0 truncated), 2 val rows; the train shards'
    sha256s."""
    rng = np.random.default_rng(0)
    location = resolve(str(root))
    shards = [
        write_shard(location, "train", s, _rows(rng, f"k{s}", 4, corrupt=2 if s == 0 else None))
        for s in range(2)
    ]
    val = write_shard(location, "val", 0, _rows(rng, "v", 2))
    classes = [ClassInfo(id=i, name=f"c{i}", colour=voc_colour(i)) for i in range(3)]
    splits = {"train": SplitInfo(shards=shards), "val": SplitInfo(shards=[val])}
    save_manifest(location, Manifest(name="tiny", classes=classes, splits=splits))
    return [s.sha256 for s in shards]


def test_sweep_records_nested_runs(ray_cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    train_sha256s = _write_dataset(data)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        f"""\
name: e2e-sweep
method: spade
dataset: {{uri: "{data}", image_size: [{SIZE}, {SIZE}], preprocess: fixed, on_corrupt: skip,
          read_cpus: 0.1}}
model: {{ngf: 8, ndf: 8}}
train: {{epochs: 2, lr_decay_epochs: 1, batch_size: 2, log_every_iters: 1}}
eval: {{num_grid_samples: 2, metrics: [fid, kid, lpips], allow_substitute_weights: true,
       every_epochs: 2, target: {{fid: 1.0e6}}}}
resources: {{num_workers: 2, cpus_per_worker: 0.4}}
cost: {{cpu_hour: 0.05, currency: EUR}}
tracking: {{system_metrics_every_s: 2}}
search:
  space:
    train.lr_g: {{grid: [1.0e-4, 3.0e-4, {FAILING_LR}]}}
    # The third trial fails on the corrupt row, once (no restart of its workers).
    dataset.on_corrupt: {{grid: [error], when: {{train.lr_g: {FAILING_LR}}}}}
    train.max_failures: {{grid: [0], when: {{train.lr_g: {FAILING_LR}}}}}
"""
    )
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")
    console = Console(file=io.StringIO(), width=4000)

    # What `sislab run` times before launch (timings made up here: a test checks that they
    # land on the parent run next to the actual cost, not how long SPADE takes).
    estimate = SweepEstimate(
        spec.name, 3, 1, [ConfigEstimate("spade", [10.0, 20.0, 30.0], "cpu", 0.9, 1.0, 0.5,
                                         [8, 8, 8], [1, 1, 1], 2.0)], spec.cost,
    )  # fmt: skip
    outcome = run_sweep(spec, spec_path, run_dir=run_dir, console=console, estimate=estimate)

    assert outcome.num_trials == 3 and outcome.num_errors == 1
    state = run_dir.load_state()
    assert state.status == "FINISHED"
    client = MlflowClient(state.tracking_uri)
    parent = client.get_run(state.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert "spec.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    children = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == 3
    # The failed trial: the error's own line in the live view, its run's tag and description,
    # the whole traceback as error.txt, the run FAILED.
    (failed,) = [c for c in children if c.data.params["train.lr_g"] == str(FAILING_LR)]
    line = failed.data.tags["sislab.error"]
    assert line.startswith("DataError: corrupt sample in shard train/part-00000.parquet row"), line
    assert failed.info.status == "FAILED"
    assert line in failed.data.tags["mlflow.note.content"]
    assert f"failed: {line}" in console.file.getvalue()
    error_txt = client.download_artifacts(failed.info.run_id, "error.txt", str(tmp_path))
    traceback = Path(error_txt).read_text()  # Ray's format: frames, no "Traceback" header
    assert 'File "' in traceback and "sislab.errors.DataError: corrupt sample" in traceback
    children = [c for c in children if c is not failed]
    assert {c.data.params["train.lr_g"] for c in children} == {"0.0001", "0.0003"}
    names = {c.data.tags["sislab.trial_id"]: c.info.run_name for c in children}
    for child in children:
        _check_trial(client, child, tmp_path, train_sha256s)
    parent = client.get_run(parent.info.run_id)
    _check_parent(client, parent, children, names)
    _check_cost(parent, [*children, client.get_run(failed.info.run_id)], estimate)


def _check_trial(client: MlflowClient, child, tmp_path: Path, train_sha256s: list[str]) -> None:
    """One trial's records, read back with MLflow's client (issues 3, 4 and 16)."""
    run_id, params = child.info.run_id, child.data.params
    assert child.info.status == "FINISHED"
    # The name starts with what varies, short, and ends with the trial id.
    lr = {"0.0001": "1e-4", "0.0003": "3e-4"}[params["train.lr_g"]]
    assert child.info.run_name == f"lr_g={lr} · {child.data.tags['sislab.trial_id']}"
    assert params["method"] == "spade"
    assert params["model.ngf"] == "8"
    # Effective values: no VGG19 weights in tests, no VAE, no GPU; each says why.
    assert "off" in child.data.tags["sislab.perceptual_loss"]
    assert (params["losses.perceptual"], params["losses.kl"]) == ("0", "0")
    assert params["resources.gpus_per_worker"] == "0"
    description = child.data.tags["mlflow.note.content"]
    assert "`losses.perceptual` logged as 0: off: no vgg19 weights" in description
    # Infrastructure is one JSON artifact, not params.
    assert not [k for k in params if is_infrastructure(k)], params
    local = client.download_artifacts(run_id, "config/infrastructure.json", str(tmp_path))
    infra = json.loads(Path(local).read_text())
    assert {"storage.uri", "dataset.read_retries", "weights.sha256"} <= set(infra)
    # The official recipe (SPADE's generic table: a dataset the code has no settings for) set
    # Adam's betas; the search's lr_g won, and the run says so.
    assert params["train.recipe"] == "official" and params["train.betas"] == "[0.0, 0.9]"
    local = client.download_artifacts(run_id, "config/recipe.json", str(tmp_path))
    recipe = json.loads(Path(local).read_text())["values"]
    assert recipe["train.betas"] == {
        "value": [0.0, 0.9],
        "recipe_value": [0.0, 0.9],
        "source": "spade/options/train_options.py:27-28",
        "from": "recipe",
    }
    assert recipe["train.lr_g"]["from"] == "search"
    assert "train.epochs" not in recipe  # the generic table sets no schedule
    assert child.data.tags["sislab.recipe"].startswith("official (spade, generic)")
    assert float(params["summary.generator_params"]) > 0  # a constant: a param, not a chart
    # The Train worker's own environment asked torch for huge pages and preloaded tcmalloc
    # where this machine has it: the driver's defaults reached it through Tune's runtime env
    # (sislab.huge_pages, sislab.host_allocator), not only the driver.
    switches = child.data.tags["sislab.speed_switches"]
    assert "reuse_host_memory=" in switches and "huge_pages=on" in switches, switches
    allocator = "tcmalloc" if tcmalloc_library() else "glibc"
    assert f"host_allocator={allocator} " in switches, switches
    for loss in LOSSES:
        assert len(client.get_metric_history(run_id, loss)) >= 2, loss
    # Learning rates are logged when they change (constant here: one point, not a flat line).
    assert len(client.get_metric_history(run_id, "lr/g")) == 1
    # No charts of constants, epochs, or a KID std over subsets that are all the whole sample.
    for key in ("eval/epoch", "best/epoch", "model/generator_params", "eval/kid_std"):
        assert key not in child.data.metrics, key
    # The grid in MLflow's image view at the evaluation step: labelled columns, 128 px cells.
    images = [a.path for a in client.list_artifacts(run_id, "images")]
    pngs = [p for p in images if p.endswith(".png")]
    assert len(pngs) == 1 and pngs[0].startswith("images/samples+step+8+"), images
    assert child.data.tags["mlflow.loggedImages"] == "True"
    with Image.open(client.download_artifacts(run_id, pngs[0], str(tmp_path))) as grid:
        assert grid.size == (3 * 128, 24 + 2 * 128)  # header, then 2 rows upscaled 2x
    # Both val rows, generated by the two ranks and gathered on rank 0, evaluated after the
    # last epoch (FID's sqrtm is ~30 s on a test CPU; the loop tests evaluate every epoch);
    # LPIPS ran on a random AlexNet (none here) and the run says so.
    for metric in ("eval/fid", "eval/kid", "eval/lpips"):
        history = client.get_metric_history(run_id, metric)
        assert [m.step for m in history] == [8], metric  # 4 iterations per epoch
    protocol = Path(client.download_artifacts(run_id, "config/eval_protocol.json", str(tmp_path)))
    assert json.loads(protocol.read_text())["sislab.protocol.num_generated"] == "2"
    assert child.data.tags["sislab.metrics.substitute_weights"] == "alexnet"
    assert not [t for t in child.data.tags if t.startswith("sislab.protocol.") and
                t != "sislab.protocol.id"]  # fmt: skip
    best = child.data.tags["sislab.best_checkpoint_uri"]
    assert best.endswith("best_checkpoint") and (Path(best) / "meta.json").is_file()
    fids = [m.value for m in client.get_metric_history(run_id, "eval/fid")]
    assert [m.value for m in client.get_metric_history(run_id, "best/fid")] == [min(fids)]
    # The truncated row was skipped in each epoch, counted over both ranks, and logged.
    assert [m.value for m in client.get_metric_history(run_id, "data/skipped_rows")] == [1.0, 1.0]
    # The dataset input (name, URI, digest of the train shards), source and host.
    run = client.get_run(run_id)
    (data_input,) = run.inputs.dataset_inputs
    assert data_input.dataset.name == "tiny"
    assert data_input.dataset.digest == manifest_digest(train_sha256s)
    assert json.loads(data_input.dataset.source)["uri"].endswith("data")
    assert child.data.tags["mlflow.source.type"] == "JOB"
    if git_commit() != "unknown":
        assert child.data.tags["mlflow.source.git.commit"] == git_commit()
    assert any(k.startswith("system/cpu_utilization_percentage") for k in run.data.metrics)
    # The best generator loads from the run in one call and draws an image for a layout.
    import torch

    from sislab import load_generator

    best_g = load_generator(run_id, client.tracking_uri)
    image = best_g.generate(torch.zeros(1, 1, SIZE, SIZE, dtype=torch.long))
    assert image.shape == (1, 3, SIZE, SIZE) and bool(torch.isfinite(image).all())
    assert best_g.best["metric"] == "fid" and best_g.best["value"] == pytest.approx(min(fids))


def _check_parent(client: MlflowClient, parent, children, names: dict[str, str]) -> None:
    """The parent answers the sweep's question: best trial, shared params, description."""
    params = parent.data.params
    assert "train.lr_g" not in params  # varied: never the spec's default
    assert params["train.lr_d"] == "0.0004" and params["model.ngf"] == "8"  # shared
    assert params["train.betas"] == "[0.0, 0.9]"  # the recipe's, as the trials trained
    space = json.loads(params["search.space"])["space"]
    assert space["train.lr_g"] == {"grid": [1e-4, 3e-4, FAILING_LR]}
    assert space["dataset.on_corrupt"]["when"] == {"train.lr_g": FAILING_LR}  # the failing trial
    assert params["search.metric"] == "train/loss_g"
    assert not [
        k for k in params if is_infrastructure(k) and not k.startswith(("search.", "cost."))
    ]
    assert "search_space.json" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    # The best trial under the sweep's metric (its last value, as Tune ranks), with its scores.
    losses = {c.info.run_id: c.data.metrics["train/loss_g"] for c in children}
    best_id = min(losses, key=losses.get)
    assert parent.data.metrics["best/train/loss_g"] == pytest.approx(losses[best_id])
    best_run = next(c for c in children if c.info.run_id == best_id)
    assert parent.data.metrics["best/fid"] == pytest.approx(best_run.data.metrics["eval/fid"])
    assert parent.data.tags["sislab.best_trial_run_id"] == best_id
    best_name = next(c.info.run_name for c in children if c.info.run_id == best_id)
    assert parent.data.tags["sislab.best_trial"] == best_name
    description = parent.data.tags["mlflow.note.content"]
    assert f"**{best_name}**" in description
    # One column per varied field (the failing trial's own fields are "-" for the others).
    assert "| trial | lr_g | max_failures | on_corrupt | status | train/loss_g |" in description
    for trial_id, name in names.items():
        lr = name.split(" ")[0].split("=")[1]
        assert f"| {trial_id} | {lr} | - | - | FINISHED |" in description
    assert "| 5e-4 | 0 | error | FAILED | - |" in description
    protocol = children[0].data.tags["sislab.protocol.id"]
    assert f"`{protocol}`" in description
    # The failing trial stops in its driver, filling the decoded-rows cache (dataset.cache auto)
    # before its workers start: it evaluated nothing, so 2 of 3 trials carry the protocol tags.
    assert "substitute weights (alexnet)" in description and "(2/3 trials)" in description
    assert "trial failed (1/3 trials)" in description
    assert "perceptual loss off: no vgg19 weights" in description
    assert '"train.lr_g"' in description  # the search space


def _check_cost(parent, trials, estimate: SweepEstimate) -> None:
    """Issue 18: each trial's device time (2 workers x 0.4 CPUs + the driver's 0.1), split into
    phases; the parent's sum of the trials that logged one (a trial that failed in its driver
    never started its workers), its price and the estimate next to it."""
    total = 0.0
    for trial in trials:
        metrics, params = trial.data.metrics, trial.data.params
        if "cost/device_s" not in metrics:  # failed before its workers logged (in its driver,
            assert trial.info.status == "FAILED"  # or killed by Ray when another rank failed
            continue  # first): its time is not counted
        assert (params["cost.device"], params["cost.devices_held"]) == ("cpu", "0.9")
        assert metrics["cost/device_s"] == pytest.approx(0.9 * metrics["cost/wall_s"])
        phases = ("train", "eval", "data_wait", "other")
        parts = sum(metrics[f"cost/device_s_{p}"] for p in phases)
        assert parts == pytest.approx(metrics["cost/device_s"], rel=1e-3)
        assert metrics["cost/cpu_hours"] == pytest.approx(metrics["cost/device_s"] / 3600)
        assert "cost/gpu_hours" not in metrics
        total += metrics["cost/cpu_hours"]
        if trial.info.status == "FINISHED":
            assert metrics["cost/device_s_train"] > 0 and metrics["cost/device_s_eval"] > 0
            assert metrics["cost/device_s_data_wait"] > 0  # Ray Data's batches
            # Reached at the one evaluation (iteration 8), with the device-hours so far.
            assert metrics["target/fid_step"] == 8
            assert 0 < metrics["target/fid_device_hours"] <= metrics["cost/cpu_hours"]
    costs = parent.data.metrics
    assert costs["cost/cpu_hours"] == pytest.approx(total, rel=0.01)
    assert costs["cost/gpu_hours"] == 0
    assert costs["cost/total"] == pytest.approx(0.05 * total, rel=0.01)
    assert parent.data.params["cost.currency"] == "EUR"
    assert costs["cost/wall_s"] >= max(t.data.metrics.get("cost/wall_s", 0) for t in trials)
    assert costs["cost/estimate_cpu_hours"] == pytest.approx(estimate.hours("cpu"))
    assert costs["cost/estimate_total"] == pytest.approx(0.05 * estimate.hours("cpu"))
