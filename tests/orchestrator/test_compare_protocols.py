"""``sislab compare`` refuses to rank evaluation metrics measured under different protocols."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sislab.cli import compare as compare_cli
from sislab.errors import SpecError
from sislab.metrics.protocol import PROTOCOL_ID_TAG
from sislab.orchestrator.compare import compare, display_rows, only_protocol
from sislab.orchestrator.mlflow_store import prepare_sqlite_store
from sislab.trainers.mlflow_tracker import KIND_TAG, PARENT_TAG, TRIAL_TAG

VAL, TRAIN = "aaaaaaaaaaaa", "bbbbbbbbbbbb"  # two protocol ids (FID-v, FID-t)


def _runs(protocols: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": [f"run{i:04d}" for i in range(len(protocols))],
            "protocol": protocols,
            "p.model.ngf": [str(32 * (1 + i % 2)) for i in range(len(protocols))],
            "m.eval/fid": [50.0 + i for i in range(len(protocols))],
            "m.train/loss_g": [1.0 + i for i in range(len(protocols))],
        }
    )


def test_mixed_protocols_are_refused_with_ids_counts_and_fix() -> None:
    runs = _runs([VAL, VAL, VAL, TRAIN])
    with pytest.raises(SpecError) as err:
        compare(runs, "eval/fid")
    text = str(err.value)
    assert f"{VAL} (3 runs)" in text and f"{TRAIN} (1 runs)" in text
    assert "--allow-mixed-protocols" in text


def test_allowed_mix_ranks_with_the_protocol_as_a_group_key() -> None:
    result = compare(_runs([VAL, VAL, TRAIN, TRAIN]), "eval/fid", allow_mixed_protocols=True)
    assert result.protocols == {VAL: 2, TRAIN: 2}
    assert len(result.table) == 4  # 2 ngf x 2 protocols: no mean mixes protocols
    header, rows = display_rows(result)
    assert header[:2] == ["model.ngf", "protocol"]
    assert {r[1] for r in rows} == {VAL, TRAIN}


def test_one_protocol_training_losses_and_untagged_runs_pass() -> None:
    assert compare(_runs([VAL] * 4), "eval/fid").protocols == {}
    assert "protocol" not in display_rows(compare(_runs([VAL] * 4), "eval/fid"))[0]
    assert len(compare(_runs([VAL, TRAIN, "", ""]), "train/loss_g").table) == 2
    assert len(compare(_runs([""] * 4), "eval/fid").table) == 2
    with pytest.raises(SpecError, match=r"\(none\) \(1 runs\)"):
        compare(_runs([VAL, VAL, VAL, ""]), "eval/fid")


def test_runs_without_the_metric_do_not_count() -> None:
    runs = _runs([VAL, VAL, TRAIN])
    runs.loc[2, "m.eval/fid"] = float("nan")
    assert compare(runs, "eval/fid").protocols == {}


def test_filter_to_one_protocol() -> None:
    runs = _runs([VAL, VAL, TRAIN])
    assert list(only_protocol(runs, "bbbb")["run_id"]) == ["run0002"]
    with pytest.raises(SpecError, match=VAL):
        only_protocol(runs, "cccc")


@pytest.fixture
def store(tmp_path: Path) -> str:
    db = tmp_path / "mlflow.db"
    prepare_sqlite_store(db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    exp = client.create_experiment("mixed", artifact_location=(tmp_path / "art").as_uri())
    parent = client.create_run(exp, tags={KIND_TAG: "sweep"}).info.run_id
    for i, protocol in enumerate([VAL, VAL, TRAIN]):
        run = client.create_run(
            exp, tags={PARENT_TAG: parent, TRIAL_TAG: f"t{i}", KIND_TAG: "trial"}
        ).info.run_id
        client.log_batch(
            run,
            metrics=[Metric("eval/fid", 40.0 + i, 0, 1)],
            params=[Param("model.ngf", str(32 * (1 + i)))],
            tags=[RunTag(PROTOCOL_ID_TAG, protocol)],
        )
    return uri


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    compare_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", "mixed", *argv])
    return args.handler(args)


def test_cli_refuses_then_ranks_with_the_flag(store: str, capsys) -> None:
    common = ["--tracking-uri", store, "--metric", "eval/fid", "--format", "md", "--top-k", "0"]
    with pytest.raises(SpecError, match="2 different protocols"):
        _cli(*common)
    assert _cli(*common, "--allow-mixed-protocols") == 0
    out = capsys.readouterr().out
    assert "| model.ngf | protocol |" in out and TRAIN in out and VAL in out
    assert _cli(*common, "--protocol", VAL[:6]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 2 + 2 and TRAIN not in out


def test_second_objective_is_checked_too() -> None:
    from sislab.orchestrator.compare import check_protocols

    runs = _runs([VAL, TRAIN])
    assert check_protocols(runs, "train/loss_g") == {}
    with pytest.raises(SpecError, match="eval/fid"):
        check_protocols(runs, "eval/fid")
    assert check_protocols(runs, "eval/fid", allow=True) == {VAL: 1, TRAIN: 1}
    assert check_protocols(runs, "eval/kid") == {}  # no run holds it
