"""Evaluation inside the training loop: metrics per evaluation, best checkpoint, protocol stamps."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from sislab.errors import SpecError
from sislab.metrics.protocol import PROTOCOL_ID_TAG, SUBSTITUTE_TAG
from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.checkpoint import read_meta
from sislab.trainers.context import BEST_CHECKPOINT, LocalContext
from sislab.trainers.loop import run_training
from sislab.trainers.tracking import MemoryTracker

SPEC = {
    "name": "evaluated",
    "method": "spade",
    "dataset": {"uri": "synthetic://shapes?size=32&classes=4&num=8&val=4", "image_size": [32, 32]},
    "model": {"ngf": 4, "ndf": 4},
    "train": {
        "epochs": 3,
        "lr_decay_epochs": 1,
        "batch_size": 2,
        "max_iters_per_epoch": 2,
        "log_every_iters": 2,
        "checkpoint_every_epochs": 10,
        "num_checkpoints_to_keep": None,
    },
    "eval": {
        "num_grid_samples": 2,
        # FID's 2048-d sqrtm costs ~25 s on one thread: the loop tests use KID, one test FID.
        "metrics": ["kid", "lpips"],
        "kid_subsets": 5,
        "batch_size": 3,
        "allow_substitute_weights": True,
    },
    "resources": {"num_workers": 1},
}


def _run(spec_data: dict, root: Path, tracker: MemoryTracker, evaluate: bool = True):
    spec = spec_from_dict(spec_data)
    ctx = LocalContext(root)
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
    evaluator = build.evaluator(spec, geometry, ctx.device, True) if evaluate else None
    if evaluator is not None:
        tracker.set_tags(evaluator.tags)
    state = run_training(
        build.loop_config(spec, geometry, None),
        ctx=ctx,
        source=build.synthetic_source(spec, 0, 1),
        tracker=tracker,
        procedure=procedure,
        evaluator=evaluator,
    )
    return state, ctx, procedure


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("evaluated")
    tracker = MemoryTracker()
    state, ctx, procedure = _run(SPEC, root, tracker)
    return root, tracker, state, ctx, procedure


def _eval_records(tracker: MemoryTracker) -> list[tuple[int, dict[str, float]]]:
    return [(step, m) for step, m in tracker.metrics if "eval/kid" in m]


def test_every_evaluation_logs_kid_lpips_on_the_step_axis(evaluated) -> None:
    _, tracker, _, ctx, _ = evaluated
    records = _eval_records(tracker)
    assert [step for step, _ in records] == [2, 4, 6]  # end of each epoch's last iteration
    for _, metrics in records:
        assert {"eval/kid", "eval/lpips"} <= set(metrics)
        # The step is the epoch's (no eval/epoch chart); with 4 samples and subsets of 1000
        # every KID subset is the whole sample, so its std (~1e-16) is not logged.
        assert not {"eval/epoch", "eval/kid_std"} & set(metrics)
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
        assert metrics["eval/lpips"] > 0
    # Tune sees the latest evaluation in every report, with its epoch.
    assert [r["eval/kid"] for r in ctx.reports] == [m["eval/kid"] for _, m in records]
    assert [r["eval/epoch"] for r in ctx.reports] == [1.0, 2.0, 3.0]


def test_fid_is_logged_and_selects_the_best_checkpoint(tmp_path: Path) -> None:
    one = copy.deepcopy(SPEC)
    one["train"]["epochs"] = 1
    one["eval"]["metrics"] = ["fid"]
    tracker = MemoryTracker()
    _run(one, tmp_path, tracker)
    (record,) = [m for _, m in tracker.metrics if "eval/fid" in m]
    assert record["eval/fid"] > 0 and torch.isfinite(torch.tensor(record["eval/fid"]))
    assert read_meta(tmp_path / BEST_CHECKPOINT).best["metric"] == "fid"


def test_best_checkpoint_is_the_lowest_kid_and_its_uri_is_recorded(evaluated) -> None:
    root, tracker, state, _, _ = evaluated
    fids = [m["eval/kid"] for _, m in _eval_records(tracker)]
    best_epoch = fids.index(min(fids)) + 1
    meta = read_meta(root / BEST_CHECKPOINT)
    assert meta.epoch == best_epoch
    assert meta.best["value"] == pytest.approx(min(fids))
    assert meta.eval_metrics["eval/kid"] == pytest.approx(min(fids))
    assert tracker.tags["sislab.best_checkpoint_uri"] == str((root / BEST_CHECKPOINT).resolve())
    assert tracker.tags["sislab.best_checkpoint_epoch"] == str(best_epoch)
    assert state.best["uri"] == tracker.tags["sislab.best_checkpoint_uri"]
    # best/* is one final set (the best checkpoint's scores at its step), not a second history.
    best_logged = [(step, m) for step, m in tracker.metrics if "best/kid" in m]
    assert best_logged == [(2 * best_epoch, {"best/kid": pytest.approx(min(fids)),
                                             "best/lpips": pytest.approx(meta.eval_metrics["eval/lpips"])})]  # fmt: skip
    assert not any("best/epoch" in m for _, m in tracker.metrics)
    # The best generator as an artifact, written at every improvement (the last one wins).
    best_files = {(Path(p).name, a) for p, a in tracker.artifacts if a == "best_generator"}
    assert best_files == {("generator.pt", "best_generator"), ("config.json", "best_generator")}
    # A checkpoint is reported at every improvement even though checkpoint_every_epochs is 10.
    improvements = sum(1 for i, f in enumerate(fids) if f == min(fids[: i + 1]))
    final_extra = 0 if fids[-1] == min(fids) else 1
    assert len(list(root.glob("checkpoint_*"))) == improvements + final_extra


def test_protocol_and_substitute_weights_are_tagged(evaluated) -> None:
    _, tracker, _, _, _ = evaluated
    tags = tracker.tags
    assert len(tags[PROTOCOL_ID_TAG]) == 12
    assert tags["sislab.protocol.inception_sha256"].startswith("7ff4a85c")
    assert tags["sislab.protocol.num_generated"] == "4"
    # No AlexNet file here: LPIPS ran on a random trunk and says so.
    assert "alexnet" in tags[SUBSTITUTE_TAG]


def test_evaluating_does_not_change_training(evaluated, tmp_path: Path) -> None:
    _, _, _, _, procedure = evaluated
    _, _, plain = _run(SPEC, tmp_path, MemoryTracker(), evaluate=False)
    for a, b in zip(
        procedure.generator.state_dict().values(),
        plain.generator.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_resume_keeps_the_best_so_far(tmp_path: Path) -> None:
    short = copy.deepcopy(SPEC)
    short["train"]["epochs"] = 2
    short["eval"]["metrics"] = ["kid"]
    first = MemoryTracker()
    _run(short, tmp_path, first)
    longer = copy.deepcopy(short)
    longer["train"]["epochs"] = 3
    second = MemoryTracker()
    resumed, _, _ = _run(longer, tmp_path, second)
    fids = [m["eval/kid"] for _, m in _eval_records(first) + _eval_records(second)]
    assert len(fids) == 3
    assert resumed.best["value"] == pytest.approx(min(fids))
    meta = json.loads((tmp_path / BEST_CHECKPOINT / "meta.json").read_text())
    assert meta["best"]["value"] == pytest.approx(min(fids))


def test_different_settings_give_different_protocol_ids() -> None:
    from sislab.metrics.protocol import protocol_id

    spec = spec_from_dict({**SPEC, "eval": {**SPEC["eval"], "metrics": ["kid"]}})
    geometry = build.dataset_geometry(spec)
    ids = set()
    for num in (None, 2, None):
        data = {**SPEC, "eval": {**SPEC["eval"], "metrics": ["kid"], "num_samples": num}}
        evaluator = build.evaluator(spec_from_dict(data), geometry, torch.device("cpu"), True)
        ids.add(protocol_id(evaluator.protocol))
    assert len(ids) == 2  # num_samples 2 differs; the two default runs agree


def test_a_run_that_differs_from_its_named_protocol_is_refused() -> None:
    data = {**SPEC, "eval": {**SPEC["eval"], "metrics": ["kid"], "protocol": "vasis-fid-t"}}
    spec = spec_from_dict(data)
    with pytest.raises(SpecError, match="reference_split: protocol 'train', run 'val'"):
        build.evaluator(spec, build.dataset_geometry(spec), torch.device("cpu"), True)


def test_miou_and_accuracy_with_a_builtin_segmenter(tmp_path: Path) -> None:
    from sislab.metrics.segmenters import train_segmenter

    seg = train_segmenter(SPEC["dataset"]["uri"], tmp_path / "seg.pt", epochs=1, batch_size=4)
    data = copy.deepcopy(SPEC)
    data["train"]["epochs"] = 1
    data["eval"].update(
        metrics=["miou", "accuracy"], segmenter=f"builtin:{seg.path}", select_best_by="miou"
    )
    tracker = MemoryTracker()
    _run(data, tmp_path / "run", tracker)
    (record,) = [m for _, m in tracker.metrics if "eval/miou" in m]
    assert 0.0 <= record["eval/miou"] <= 1.0 and 0.0 < record["eval/accuracy"] <= 1.0
    assert tracker.tags["sislab.protocol.segmenter"] == "builtin"
    assert tracker.tags["sislab.protocol.label_mapping"] == "identity"
    assert len(tracker.tags["sislab.protocol.segmenter_sha256"]) == 64
    assert read_meta(tmp_path / "run" / BEST_CHECKPOINT).best["metric"] == "miou"


def test_fid_t_and_fid_v_runs_follow_either_vasis_protocol() -> None:
    from sislab.trainers.evaluation import EvalNetworks, check_protocol, run_protocol

    spec = spec_from_dict({**SPEC, "eval": {**SPEC["eval"], "metrics": ["fid", "fid_train"]}})
    record = run_protocol(spec.eval, EvalNetworks(), (32, 32), 4)
    assert record.reference_split == "val+train"
    check_protocol(record, "vasis-fid-t")
    check_protocol(record, "vasis-fid-v")


def test_fid_t_uses_cached_train_statistics(tmp_path: Path) -> None:
    import os

    data = copy.deepcopy(SPEC)
    data["train"]["epochs"] = 1
    data["eval"].update(metrics=["fid_train"], train_reference_images=8)
    cache = Path(os.environ["SISLAB_CACHE_DIR"]) / "fid-reference"
    before = set(cache.glob("*.npz")) if cache.exists() else set()
    tracker = MemoryTracker()
    _run(data, tmp_path, tracker)
    (record,) = [m for _, m in tracker.metrics if "eval/fid_train" in m]
    assert record["eval/fid_train"] > 0
    assert len(set(cache.glob("*.npz")) - before) == 1  # the train split's statistics, cached
    assert tracker.tags["sislab.protocol.reference_split"] == "train"
