"""mCSD/mOCD of a tiny GroupDNet: logged during training, and offline under smis-deepfashion."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tests.trainers.test_groupdnet_procedure import GROUPDNET

from sislab.cli.main import main
from sislab.metrics.protocol import (
    OFFLINE_TAG,
    PROTOCOL_ID_TAG,
    SUBSTITUTE_TAG,
    preset,
    protocol_id,
)
from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.context import LocalContext
from sislab.trainers.loop import run_training
from sislab.trainers.tracking import MemoryTracker

# The tiny GroupDNet of tests/trainers/test_groupdnet_procedure.py: 4 classes at 64x64.
TINY = GROUPDNET
SPEC = {
    "name": "gdn-smis",
    "method": "groupdnet",
    "dataset": {
        "uri": "synthetic://shapes?size=64&classes=4&num=4&val=2&test=2",
        "image_size": [64, 64],
    },
    "model": TINY,
    "train": {"epochs": 1, "lr_decay_epochs": 1, "batch_size": 2, "max_iters_per_epoch": 2},
    "eval": {
        "num_grid_samples": 2,
        "metrics": ["mcsd", "mocd"],
        "batch_size": 2,
        # No AlexNet file in tests: LPIPS runs on the seeded random trunk, tagged as such.
        "allow_substitute_weights": True,
        "protocol": "smis-deepfashion",
    },
    "resources": {"num_workers": 1},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("gdn")
    spec = spec_from_dict(SPEC)
    ctx = LocalContext(root)
    tracker = MemoryTracker()
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
    evaluator = build.evaluator(spec, geometry, ctx.device, True)
    tracker.set_tags(evaluator.tags)
    run_training(
        build.loop_config(spec, geometry, None),
        ctx=ctx,
        source=build.synthetic_source(spec, 0, 1),
        tracker=tracker,
        procedure=procedure,
        evaluator=evaluator,
    )
    (checkpoint,) = sorted(root.glob("checkpoint_*"))
    return tracker, checkpoint


def test_training_logs_mcsd_and_mocd_on_the_step_axis(trained) -> None:
    tracker, _ = trained
    (record,) = [(step, m) for step, m in tracker.metrics if "eval/mcsd" in m]
    step, metrics = record
    assert step == 2  # the end of the epoch's 2 iterations
    assert math.isfinite(metrics["eval/mcsd"]) and metrics["eval/mcsd"] > 0
    assert math.isfinite(metrics["eval/mocd"]) and metrics["eval/mocd"] >= 0


def test_training_records_its_own_protocol_and_the_offline_preset(trained) -> None:
    tracker, _ = trained
    tags = tracker.tags
    # The in-loop numbers were computed on val with 2 samples: not the preset's id.
    assert tags[PROTOCOL_ID_TAG] != protocol_id(preset("smis-deepfashion"))
    assert tags["sislab.protocol.reference_split"] == "val"
    assert tags["sislab.protocol.diversity_samples"] == "2"
    assert tags["sislab.protocol.diversity_pairing"] == "consecutive"
    assert tags["sislab.protocol.lpips_net"] == "alex"
    assert tags[OFFLINE_TAG] == "smis-deepfashion"
    assert "alexnet" in tags[SUBSTITUTE_TAG]


def test_offline_command_follows_the_preset_on_the_test_split(trained, capsys) -> None:
    _, checkpoint = trained
    code = main(["eval", "smis", str(checkpoint), "--json", "--allow-substitute-weights"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["preset"] == "smis-deepfashion"
    assert result["preset_id"] == protocol_id(preset("smis-deepfashion"))
    assert result["split"] == "test" and result["label_maps"] == 2
    assert result["samples"] == 20 and result["pairs"] == 19
    assert math.isfinite(result["mcsd"]) and result["mcsd"] > 0
    assert math.isfinite(result["mocd"]) and result["mocd"] >= 0
    assert result["per_class"]
    # 64 px and 2 label maps are not the preset's 256 px and 100: said, and a different id.
    assert not result["follows_preset"]
    assert any(d.startswith("resolution:") for d in result["differences"])
    assert any(d.startswith("diversity_label_maps:") for d in result["differences"])
    assert result["protocol_id"] != result["preset_id"]
    assert result["substitutes"] == ["alexnet"]
    record = result["record"]
    assert (record["reference_split"], record["diversity_pairing"]) == ("test", "consecutive")


def test_offline_command_strict_refuses_a_differing_run(trained, capsys) -> None:
    _, checkpoint = trained
    code = main(["eval", "smis", str(checkpoint), "--strict", "--allow-substitute-weights"])
    assert code == 2
    assert "resolution: protocol (256, 256), run (64, 64)" in capsys.readouterr().err


def test_offline_scores_are_logged_to_the_run_under_their_own_keys(
    trained, tmp_path: Path, capsys
) -> None:
    from mlflow.tracking import MlflowClient

    from sislab.orchestrator.mlflow_store import prepare_sqlite_store

    _, checkpoint = trained
    db = tmp_path / "mlflow.db"
    prepare_sqlite_store(db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("smis")).info.run_id
    argv = ["eval", "smis", str(checkpoint), "--json", "--allow-substitute-weights"]
    assert main([*argv, "--run-id", run_id, "--tracking-uri", uri]) == 0
    result = json.loads(capsys.readouterr().out)
    run = client.get_run(run_id)
    assert run.data.metrics["offline/smis-deepfashion/mcsd"] == pytest.approx(result["mcsd"])
    assert run.data.metrics["offline/smis-deepfashion/mocd"] == pytest.approx(result["mocd"])
    assert "eval/mcsd" not in run.data.metrics  # the in-loop key keeps the run's own protocol
    tags = run.data.tags
    assert tags["sislab.offline.smis-deepfashion.protocol.id"] == result["protocol_id"]
    assert tags["sislab.offline.smis-deepfashion.protocol.follows_preset"] == "false"
    assert tags["sislab.offline.smis-deepfashion.metrics.substitute_weights"] == "alexnet"


def test_the_offline_scores_are_reproducible(trained, capsys) -> None:
    _, checkpoint = trained
    argv = ["eval", "smis", str(checkpoint), "--json", "--allow-substitute-weights"]
    runs = []
    for _ in range(2):
        assert main(argv) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0]["mcsd"] == runs[1]["mcsd"] and runs[0]["mocd"] == runs[1]["mocd"]
    assert torch.tensor(runs[0]["mcsd"]).isfinite()
