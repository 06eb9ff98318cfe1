"""``sislab report`` on runs written with MLflow's client into a real sqlite store (no Ray):
SC-GAN Table 5 with a row of two seeds, a row missing a metric, a row whose only run failed, a
row never run, and a run of no row. Missing cells stay missing, with their footnotes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from sislab.cli.main import main
from sislab.orchestrator.mlflow_store import prepare_sqlite_store
from sislab.orchestrator.report import build_report
from sislab.orchestrator.report_render import grid, latex, markdown
from sislab.trainers.mlflow_tracker import KIND_TAG, PARENT_TAG

PROTOCOL = "fid-v:val:all:1x:pt_inception"
SUITE = "scgan.table5_candidates"


def _trial(client, exp, parent, n: int, seed: int, metrics: dict, status="FINISHED") -> None:
    run = client.create_run(exp, tags={PARENT_TAG: parent, KIND_TAG: "trial",
                                       "sislab.protocol.id": PROTOCOL})  # fmt: skip
    params = {"method": "scgan", "model.num_candidates": str(n), "model.num_norm_candidates": "4",
              "train.seed": str(seed), "summary.generator_params": str(1000 * n),
              "train.lr_g": "0.0002" if (n, seed) == (8, 1) else "0.0001"}  # fmt: skip
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, 0, 2) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
    )
    client.set_terminated(run.info.run_id, status)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, str]:
    db = tmp_path_factory.mktemp("report") / "mlflow.db"
    prepare_sqlite_store(db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    exp = client.create_experiment("table5", artifact_location=(db.parent / "art").as_uri())
    parent = client.create_run(exp, tags={KIND_TAG: "sweep"}).info.run_id
    client.log_param(parent, "search.space", json.dumps({"repeats": 2, "suite": SUITE}))
    client.log_param(parent, "dataset.uri", "synthetic://shapes?size=64")
    _trial(client, exp, parent, 8, 0, {"eval/fid": 100.0, "eval/miou": 0.20})
    _trial(client, exp, parent, 8, 1, {"eval/fid": 110.0, "eval/miou": 0.30})
    _trial(client, exp, parent, 4, 0, {"eval/fid": 120.0})  # no segmenter: no mIoU
    _trial(client, exp, parent, 2, 0, {"eval/fid": 1.0, "eval/miou": 0.9}, status="FAILED")
    _trial(client, exp, parent, 3, 0, {"eval/fid": 5.0})  # n = 3 is no row of Table 5
    client.set_terminated(parent)
    return uri, parent


def test_the_table_keeps_missing_cells_missing(store) -> None:
    uri, parent = store
    report = build_report(MlflowClient(uri), "table5", parent)
    header, rows, footnotes = grid(report)
    assert header == ["row", "runs", "mIoU↑ sislab", "mIoU↑ paper",
                      "FID↓ sislab", "FID↓ paper"]  # fmt: skip
    assert rows == [
        ["n = 8", "2", "25.0 ± 7.1", "67.9", "105.0 ± 7.1", "–¹"],
        ["n = 4", "1", "–²", "67.3", "120.0", "–¹"],
        # The failed run's numbers are not used: the row has no finished run.
        ["n = 2", "0", "–³", "64.8", "–³", "–¹"],
        ["n = 1", "0", "–³", "61.2", "–³", "–¹"],
    ]
    assert footnotes == [
        "¹ the paper's text gives no value",
        "² the row's finished runs logged no eval/miou",
        "³ no finished run of this row in the sweep",
        # A param other than the suite's and the seed differs: the cells say they pool it.
        "cells pool runs that also differ in: train.lr_g",
        "1 finished run(s) of the sweep match no row",
    ]
    assert report.protocols == [PROTOCOL]
    text = markdown(report)
    assert f"Evaluation protocol: {PROTOCOL}." in text and "| n = 8 | 2 | 25.0 ± 7.1 |" in text
    assert r"25.0 $\pm$ 7.1 & 67.9" in latex(report) and r"--$^{2}$" in latex(report)


def test_report_cli_prints_writes_and_logs_to_the_parent(store, tmp_path: Path, capsys) -> None:
    uri, parent = store
    out = tmp_path / "out"
    assert main(["report", "table5", "--tracking-uri", uri, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SC-GAN (Wang et al., ICCV 2021) Table 5" in printed and "–³" in printed
    assert sorted(p.name for p in out.iterdir()) == ["table.md", "table.png", "table.tex"]
    assert (out / "table.png").read_bytes()[:4] == b"\x89PNG"
    client = MlflowClient(uri)
    logged = [a.path for a in client.list_artifacts(parent, "report")]
    assert logged == ["report/table.md", "report/table.png", "report/table.tex"]
    assert client.get_run(parent).data.tags["sislab.report"] == SUITE
    assert main(["report", "table5", "--tracking-uri", uri, "--suite", "scgan.nope"]) == 2
    assert "has no paper table" in capsys.readouterr().err
