"""Where a run's code came from: the git commit of the sislab checkout and MLflow's source tags."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import sislab

SOURCE_TYPE = "JOB"  # MLflow's SourceType for code started by a scheduler, not a notebook


@functools.cache
def git_commit() -> str:
    """Commit of the sislab checkout, or 'unknown' for an installed package (asked once)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(sislab.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def source_tags(sweep_name: str) -> dict[str, str]:
    """MLflow's own source tags (the runs table's Source column, the commit on the run page)."""
    tags = {
        "mlflow.source.name": f"sislab {sislab.__version__} · {sweep_name}",
        "mlflow.source.type": SOURCE_TYPE,
    }
    commit = git_commit()
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    return tags
