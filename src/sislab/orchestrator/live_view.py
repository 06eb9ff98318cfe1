"""The terminal view of a sweep: one table of trials with status, progress and latest metrics.

A Tune callback, so it runs on the Tune driver. On a terminal it redraws a ``rich`` table in place;
elsewhere (CI, files) it prints one line per trial event instead of redrawing.
"""

from __future__ import annotations

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
    """

    def __init__(self, total_epochs: int, console: Console | None = None) -> None:
        self.total_epochs = total_epochs
        self._console = console
        self.rows: dict[str, TrialRow] = {}
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

    def _row(self, trial) -> TrialRow:
        if trial.trial_id not in self.rows:
            self.rows[trial.trial_id] = TrialRow(trial.trial_id, {})
        row = self.rows[trial.trial_id]
        row.overrides = trial_config(trial.config)  # PBT changes a trial's config as it goes
        return row

    def shown_metrics(self) -> list[str]:
        """Training metrics, then the evaluation scores any trial has reported."""
        names = {m for row in self.rows.values() for m in row.metrics}
        return [*SHOWN_METRICS, *score_columns(names, "eval/")]

    def varied(self) -> dict[str, str]:
        """Column header of each field the trials set (the method first)."""
        keys = dict.fromkeys(k for row in self.rows.values() for k in row.overrides)
        return short_keys(sorted(keys, key=lambda k: k != METHOD_KEY))

    def table(self) -> Table:
        """The current table of trials: one column per varied field, a failed trial's status
        followed by its error's own last line."""
        elapsed = time.monotonic() - self._started
        table = Table(title=f"sislab sweep · {len(self.rows)} trials · {elapsed:.0f}s")
        shown = self.shown_metrics()
        varied = self.varied()
        for column in ("trial", "status", *varied.values(), "progress", "epoch", *shown):
            table.add_column(column.removeprefix("train/"))
        for row in self.rows.values():
            bar = ProgressBar(total=max(self.total_epochs, 1), completed=row.epoch, width=16)
            status = row.status if not row.error else f"{row.status}: {row.error}"
            table.add_row(
                row.trial_id,
                status,
                *(_fmt(row.overrides[k]) if k in row.overrides else "-" for k in varied),
                bar,
                f"{row.epoch}/{self.total_epochs}",
                *(_fmt(row.metrics[m]) if m in row.metrics else "-" for m in shown),
            )
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
                if k in SHOWN_METRICS or k in score_columns([k], "eval/")
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
        where = getattr(trial, "error_file", None) or trial.local_path
        self._refresh(f"[{trial.trial_id}] failed: {row.error} (traceback: {where})")

    def on_experiment_end(self, trials, **info):
        if self._live is not None:
            self._live.update(self.table())
            self._live.stop()
            self._live = None
