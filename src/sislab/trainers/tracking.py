"""Where a trial's records go, seen from the training loop: an interface with no MLflow in it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Tracker(Protocol):
    """Records of one trial. Only rank 0 gets a real tracker; other ranks get ``NullTracker``."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log scalar metrics at a global iteration."""
        ...

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        """Upload a local file under ``artifact_path`` of the run."""
        ...

    def log_params(self, params: dict[str, str]) -> None:
        """Log run params (constants of the run, e.g. the model's size)."""
        ...

    def log_image(self, path: Path, key: str, step: int) -> None:
        """Log an image file as the series ``key`` at a global iteration (MLflow's image view)."""
        ...

    def set_tags(self, tags: dict[str, str]) -> None:
        """Set run tags (e.g. that the perceptual loss is off and why)."""
        ...

    def flush(self, *, last: bool = False) -> bool:
        """Send whatever is buffered; called before each checkpoint and at the end. Returns
        whether everything was sent (False: records are still held in this process). ``last``:
        before the trial's last checkpoint, which is written whatever this returns, so the wait
        may be as long as ``close``'s."""
        ...

    def unsent_metrics(self) -> list[tuple[str, float, int, int]]:
        """Metric points not yet sent (key, value, timestamp ms, step), oldest first."""
        ...

    def resend(self, points: list[tuple[str, float, int, int]]) -> None:
        """Queue points a checkpoint of this run carried unsent; those the run holds are skipped."""
        ...

    def close(self) -> None:
        """Send what is left (bounded wait) and stop; called once when the worker ends."""
        ...


class NullTracker:
    """Tracker of the ranks that do not write records, and of runs without tracking."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        del metrics, step

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        del path, artifact_path

    def log_image(self, path: Path, key: str, step: int) -> None:
        del path, key, step

    def log_params(self, params: dict[str, str]) -> None:
        del params

    def set_tags(self, tags: dict[str, str]) -> None:
        del tags

    def flush(self, *, last: bool = False) -> bool:
        del last
        return True

    def unsent_metrics(self) -> list[tuple[str, float, int, int]]:
        return []

    def resend(self, points: list[tuple[str, float, int, int]]) -> None:
        del points

    def close(self) -> None:
        pass


class MemoryTracker(NullTracker):
    """Keeps every record in memory; used by tests and ``sislab bench train``."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.artifacts: list[tuple[Path, str]] = []
        self.images: list[tuple[str, int, bytes]] = []  # key, step, the file's bytes
        self.tags: dict[str, str] = {}
        self.params: dict[str, str] = {}

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        self.artifacts.append((path, artifact_path))

    def log_image(self, path: Path, key: str, step: int) -> None:
        self.images.append((key, step, Path(path).read_bytes()))  # the caller deletes its file

    def log_params(self, params: dict[str, str]) -> None:
        self.params.update(params)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)
