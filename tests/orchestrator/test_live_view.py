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


def test_many_trials_stay_one_screen() -> None:
    """200 trials (150 done, 40 pending, 4 running, 6 failed): the table shows the counts, the
    running trials, the best three so far and the latest failures, not a line per trial."""
    lines = io.StringIO()  # not a terminal: the view prints one line per event there
    view = LiveView(3, Console(file=lines), metric="eval/fid", mode="min", num_trials=200)
    trials = [
        SimpleNamespace(trial_id=f"t{i:03d}", config={"train.lr_g": 1e-4 * (i + 1)})
        for i in range(160)
    ]
    for i, trial in enumerate(trials):
        view.on_trial_start(0, trials, trial)
        view.on_trial_result(0, trials, trial, {"epoch": 3, "eval/fid": 100.0 + (i * 37) % 160})
        if i < 150:
            view.on_trial_complete(0, trials, trial)
        elif i < 156:
            failed = SimpleNamespace(**vars(trial), error_file=None, local_path="/tmp/x")
            failed.get_error = lambda i=i: f"Traceback\nValueError: bad trial {i}"
            view.on_trial_error(0, trials, failed)
    assert view.counts() == {"pending": 40, "running": 4, "paused": 0, "done": 150, "failed": 6}
    out = io.StringIO()
    Console(file=out, width=220, force_terminal=False).print(view.table())
    text = out.getvalue()
    assert len(text.splitlines()) <= 30  # one screen, whatever the number of trials
    assert "pending 40 · running 4 · done 150 · failed 6" in text
    best = [r.trial_id for r in view.best()]
    assert best == ["t000", "t013", "t026"]  # fid 100, 101, 102
    for trial_id in ["t156", "t157", "t158", "t159", *best, "t153", "t154", "t155"]:
        assert trial_id in text
    assert "t001" not in text and "t150" not in text  # neither a middling nor an old failure
    assert "bad trial 155" in text


def test_final_table_of_many_trials_lists_the_best_and_writes_every_trial(tmp_path) -> None:
    import csv

    from sislab.orchestrator.summary import shown_rows, status_counts, write_trials_csv

    rows = [
        TrialSummary(f"t{i:03d}", f"r{i}", "FINISHED", "", {"train/loss_g": float(i % 50)},
                     params={"train.lr_g": str(i)})
        for i in range(199)
    ]  # fmt: skip
    rows.append(TrialSummary("t199", "r199", "FAILED", "", {"train/loss_g": -1.0}, error="x"))
    shown = shown_rows(rows, "train/loss_g", "min")
    assert len(shown) == 20 and max(r.metrics["train/loss_g"] for r in shown) == 4.0
    assert "t199" not in {r.trial_id for r in shown}  # failed: ranked last whatever its value
    assert status_counts(rows) == "199 FINISHED, 1 FAILED"
    write_trials_csv(tmp_path / "trials.csv", rows, ["train.lr_g"])
    with (tmp_path / "trials.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 200 and table[-1]["error"] == "x"
    assert table[7]["train.lr_g"] == "7" and table[7]["mlflow_run_id"] == "r7"


def test_probed_micro_batch_and_peak_memory_become_columns_once_reported() -> None:
    out = io.StringIO()
    view = LiveView(1, Console(file=out, force_terminal=False, width=200))
    trial = SimpleNamespace(trial_id="t1", config={})
    view.on_trial_start(0, [trial], trial)
    result = {"epoch": 1, "train/loss_g": 2.0, "train/micro_batch": 4.0,
              "train/accumulation": 2.0, "system/peak_memory_mb": 812.0}  # fmt: skip
    view.on_trial_result(0, [trial], trial, result)
    assert view.shown_metrics()[3:] == [
        "train/micro_batch", "train/accumulation", "system/peak_memory_mb"
    ]  # fmt: skip
    assert "micro_batch=4 accumulation=2 system/peak_memory_mb=812" in out.getvalue()
