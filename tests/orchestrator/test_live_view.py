"""The sweep's terminal view shows evaluation scores as soon as a trial reports them."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from sislab.orchestrator.live_view import LiveView
from sislab.orchestrator.summary import TrialSummary, summary_columns


def test_eval_scores_become_columns_and_progress_lines() -> None:
    out = io.StringIO()
    view = LiveView(2, Console(file=out, force_terminal=False, width=200))
    trial = SimpleNamespace(trial_id="t1", config={"train.lr_g": 1e-4})
    view.on_trial_start(0, [trial], trial)
    view.on_trial_result(0, [trial], trial, {"epoch": 1, "train/loss_g": 2.0})
    assert view.shown_metrics() == ["train/loss_g", "train/loss_d", "train/images_per_s"]
    result = {"epoch": 2, "train/loss_g": 1.5, "eval/fid": 123.4, "eval/kid_std": 0.1}
    view.on_trial_result(0, [trial], trial, {**result, "eval/epoch": 2.0})
    assert view.shown_metrics()[-1] == "eval/fid"  # bookkeeping values are not columns
    assert "epoch 2/2 loss_g=1.5 eval/fid=123.4" in out.getvalue()


def test_final_table_shows_best_checkpoint_scores() -> None:
    rows = [
        TrialSummary("a", "r1", "FINISHED", "", {"train/loss_g": 1.0, "best/fid": 80.0}),
        TrialSummary("b", "r2", "FINISHED", "", {"best/miou": 0.4, "best/epoch": 3.0}),
    ]
    assert summary_columns(rows)[-2:] == ["best/fid", "best/miou"]
    assert "best/epoch" not in summary_columns(rows)
