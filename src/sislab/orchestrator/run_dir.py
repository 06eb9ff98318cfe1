"""The run folder of a sweep: where its spec copy, state, MLflow store, Ray results and logs live.

Layout::

    RUN_DIR/spec.yaml        the spec as given
    RUN_DIR/sweep.json       state: MLflow experiment and parent run, storage path, status
    RUN_DIR/mlflow.db        default MLflow store (sqlite), artifacts in RUN_DIR/mlartifacts
    RUN_DIR/ray_results/     default Ray storage: the Tune experiment and every Train run
    RUN_DIR/logs/            Ray's and sislab's logs
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from sislab.errors import SpecError

TUNE_EXPERIMENT = "sweep"  # deterministic: `sislab resume` restores {storage}/sweep


class SweepState(BaseModel):
    """What ``sweep.json`` holds, enough to resume the sweep under the same MLflow parent run."""

    name: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    storage_path: str
    status: str = "RUNNING"


@dataclass(frozen=True)
class RunDir:
    """Paths of one sweep's run folder."""

    root: Path

    @classmethod
    def create(cls, base: Path, name: str, explicit: Path | None = None) -> RunDir:
        """A new run folder: ``explicit`` if given, else ``base/NAME-YYYYmmdd-HHMMSS``."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        root = (explicit or base / f"{name}-{stamp}").expanduser().resolve()
        if (root / "sweep.json").exists():
            raise SpecError(
                f"{root} already holds a sweep",
                fix=f"continue it with `sislab resume {root}`, or choose another --run-dir",
            )
        root.mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(exist_ok=True)
        return cls(root)

    @classmethod
    def existing(cls, root: Path) -> RunDir:
        """An existing run folder, as ``sislab resume`` takes it."""
        root = root.resolve()
        if not (root / "sweep.json").exists():
            raise SpecError(
                f"{root} is not a sislab run folder (no sweep.json)",
                fix="pass the folder `sislab run` printed at its start",
            )
        return cls(root)

    @property
    def spec_path(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def state_path(self) -> Path:
        return self.root / "sweep.json"

    @property
    def db_path(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def artifact_root(self) -> str:
        return (self.root / "mlartifacts").as_uri()

    @property
    def default_storage(self) -> str:
        return str(self.root / "ray_results")

    @property
    def ray_log(self) -> Path:
        return self.root / "logs" / "ray.log"

    def save_state(self, state: SweepState) -> None:
        """Write ``sweep.json`` atomically."""
        tmp = self.state_path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(state.model_dump(), indent=2))
        tmp.replace(self.state_path)

    def load_state(self) -> SweepState:
        """Read ``sweep.json``."""
        return SweepState.model_validate_json(self.state_path.read_text())
