"""The terminal view of a sweep: one table of trials with status, progress and latest metrics.

A Tune callback, so it runs on the Tune driver. On a terminal it redraws a ``rich`` table in place;
elsewhere (CI, files) it prints one line per trial event instead of redrawing. A sweep of more
than ``FULL_TABLE_ROWS`` trials stays one screen: the counts per status, the running trials, the
best so far under the sweep's metric and the latest failures, never a line per trial.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from sislab.orchestrator.pbt import trial_config
from sislab.orchestrator.summary import score_columns
from sislab.orchestrator.trial_error import error_line, error_text
from sislab.search_spaces.space import METHOD_KEY
from sislab.trainers.run_names import short_keys

SHOWN_METRICS = ("train/loss_g", "train/loss_d", "train/images_per_s")
# Up to this many trials the table lists every trial; past it, the compact view below.
FULL_TABLE_ROWS = 20
MAX_RUNNING_ROWS = 10  # running trials listed in the compact view (then "+N more")
BEST_ROWS = 3  # best trials so far in the compact view
FAILED_ROWS = 3  # latest failures in the compact view
# Shown once a trial reports them: what train.micro_batch_size: auto chose, and peak memory.
SHOWN_IF_REPORTED = ("train/micro_batch", "train/accumulation", "system/peak_memory_mb")


@dataclass
class TrialRow:
    """What the view knows of one trial."""

    trial_id: str
    overrides: dict[str, Any]
    status: str = "PENDING"
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class LiveView(Callback):
    """Tune callback drawing the trial table.

    Args:
        total_epochs: Epochs of each trial (the progress bars' length).
        console: Where to draw (default: stdout).
        metric: The sweep's metric, by which the compact view ranks the best trials so far
            (None: no ranking).
        mode: ``min`` or ``max`` of ``metric``.
        num_trials: Trials the sweep will run, for the pending count (None: unknown).
    """

    def __init__(
        self,
        total_epochs: int,
        console: Console | None = None,
        metric: str | None = None,
        mode: str = "min",
        num_trials: int | None = None,
    ) -> None:
        self.total_epochs = total_epochs
        self._console = console
        self.metric = metric
        self.mode = mode
        self.num_trials = num_trials
        self.rows: dict[str, TrialRow] = {}
        self._failed_order: list[str] = []
        self._live: Live | None = None
        self._started = time.monotonic()

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = Console()
        return self._console

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state; consoles hold locks.
        state = dict(self.__dict__)
        state["_console"] = None
        state["_live"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A sweep resumed from an experiment state pickled before these fields existed.
        defaults = {"metric": None, "mode": "min", "num_trials": None, "_failed_order": []}
        self.__dict__.update({**defaults, **state})

    def _row(self, trial) -> TrialRow:
        if trial.trial_id not in self.rows:
            self.rows[trial.trial_id] = TrialRow(trial.trial_id, {})
        row = self.rows[trial.trial_id]
        row.overrides = trial_config(trial.config)  # PBT changes a trial's config as it goes
        return row

    def shown_metrics(self) -> list[str]:
        """Training metrics, then the evaluation scores any trial has reported."""
        names = {m for row in self.rows.values() for m in row.metrics}
        reported = [m for m in SHOWN_IF_REPORTED if m in names]
        return [*SHOWN_METRICS, *reported, *score_columns(names, "eval/")]

    def varied(self) -> dict[str, str]:
        """Column header of each field the trials set (the method first)."""
        keys = dict.fromkeys(k for row in self.rows.values() for k in row.overrides)
        return short_keys(sorted(keys, key=lambda k: k != METHOD_KEY))

    def counts(self) -> dict[str, int]:
        """Trials per state: pending (not started yet, when the sweep's size is known),
        running, paused, done and failed."""
        by_status = {"RUNNING": 0, "PAUSED": 0, "TERMINATED": 0, "ERROR": 0}
        for row in self.rows.values():
            by_status[row.status] = by_status.get(row.status, 0) + 1
        pending = by_status.get("PENDING", 0)
        if self.num_trials is not None:
            pending = max(self.num_trials - len(self.rows), 0) + pending
        return {
            "pending": pending,
            "running": by_status["RUNNING"],
            "paused": by_status["PAUSED"],
            "done": by_status["TERMINATED"],
            "failed": by_status["ERROR"],
        }

    def best(self, limit: int = BEST_ROWS) -> list[TrialRow]:
        """The trials (failed ones aside) with the best latest value of the sweep's metric."""
        if self.metric is None:
            return []
        scored = [
            r for r in self.rows.values()
            if r.status != "ERROR" and isinstance(r.metrics.get(self.metric), int | float)
            and math.isfinite(r.metrics[self.metric])
        ]  # fmt: skip
        sign = 1.0 if self.mode == "min" else -1.0
        return sorted(scored, key=lambda r: sign * r.metrics[self.metric])[:limit]

    def table(self) -> Table:
        """The current table: every trial up to ``FULL_TABLE_ROWS`` trials, else the compact
        view (counts in the caption; running trials, best so far and latest failures)."""
        elapsed = time.monotonic() - self._started
        counts = self.counts()
        total = self.num_trials if self.num_trials is not None else len(self.rows)
        title = f"sislab sweep · {total} trials · {elapsed:.0f}s"
        caption = " · ".join(f"{k} {v}" for k, v in counts.items() if v or k != "paused")
        shown = self.shown_metrics()
        if self.metric is not None and self.metric not in shown:
            shown.append(self.metric)
        varied = self.varied()
        table = Table(title=title, caption=caption)
        for column in ("trial", "status", *varied.values(), "progress", "epoch", *shown):
            table.add_column(column.removeprefix("train/"))

        def add(row: TrialRow, status: str | None = None) -> None:
            bar = ProgressBar(total=max(self.total_epochs, 1), completed=row.epoch, width=16)
            status = status or row.status
            table.add_row(
                row.trial_id,
                status if not row.error else f"{status}: {row.error}",
                *(_fmt(row.overrides[k]) if k in row.overrides else "-" for k in varied),
                bar,
                f"{row.epoch}/{self.total_epochs}",
                *(_fmt(row.metrics[m]) if m in row.metrics else "-" for m in shown),
            )

        if len(self.rows) <= FULL_TABLE_ROWS:
            for row in self.rows.values():
                add(row)
            return table
        running = [r for r in self.rows.values() if r.status == "RUNNING"]
        for row in running[:MAX_RUNNING_ROWS]:
            add(row)
        if len(running) > MAX_RUNNING_ROWS:
            table.add_row("...", f"+{len(running) - MAX_RUNNING_ROWS} more running")
        best = self.best()
        if best:
            table.add_section()
            for rank, row in enumerate(best, 1):
                add(row, f"best #{rank} ({row.status.lower()})")
        failed = [self.rows[t] for t in self._failed_order[-FAILED_ROWS:]]
        if failed:
            table.add_section()
            for row in failed:
                add(row)
        return table

    def _refresh(self, line: str | None = None) -> None:
        if self.console.is_terminal:
            if self._live is None:
                self._live = Live(self.table(), console=self.console, refresh_per_second=4)
                self._live.start()
            self._live.update(self.table())
        elif line:
            self.console.print(line, highlight=False, markup=False)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._row(trial).status = "RUNNING"
        self._refresh(f"[{trial.trial_id}] started {self._row(trial).overrides or ''}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = self._row(trial)
        row.status = "RUNNING"
        row.epoch = int(result.get("epoch", row.epoch))
        row.metrics.update(
            {
                k: v
                for k, v in result.items()
                if k in SHOWN_METRICS + SHOWN_IF_REPORTED
                or k == self.metric
                or k in score_columns([k], "eval/")
            }
        )
        shown = " ".join(f"{k.removeprefix('train/')}={_fmt(v)}" for k, v in row.metrics.items())
        self._refresh(f"[{trial.trial_id}] epoch {row.epoch}/{self.total_epochs} {shown}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._row(trial).status = "TERMINATED"
        self._refresh(f"[{trial.trial_id}] finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        row = self._row(trial)
        row.status = "ERROR"
        row.error = error_line(error_text(trial))
        self._failed_order.append(trial.trial_id)
        where = getattr(trial, "error_file", None) or trial.local_path
        self._refresh(f"[{trial.trial_id}] failed: {row.error} (traceback: {where})")

    def on_experiment_end(self, trials, **info):
        if self._live is not None:
            self._live.update(self.table())
            self._live.stop()
            self._live = None
