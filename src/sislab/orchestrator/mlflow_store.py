"""A new run folder's sqlite MLflow store, created from a cached, already-migrated template.

MLflow builds a new sqlite store by running its schema migrations, which takes 10-20 s on a small
machine; copying an empty store made once per MLflow version takes milliseconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient


def template_path() -> Path:
    """Cached empty store for the installed MLflow version."""
    cache = Path(os.environ.get("SISLAB_CACHE_DIR", "~/.cache/sislab")).expanduser()
    return cache / f"mlflow-{mlflow.__version__}-empty.db"


def _build_template(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        db = Path(tmp) / "empty.db"
        MlflowClient(f"sqlite:///{db}").search_experiments()  # runs the migrations
        os.replace(db, target.with_suffix(f".{os.getpid()}.partial"))
        # Atomic: concurrent builders each rename a complete file into place.
        os.replace(target.with_suffix(f".{os.getpid()}.partial"), target)


def prepare_sqlite_store(db_path: Path) -> None:
    """Create ``db_path`` from the template unless it exists (the template is built on first use)."""
    if db_path.exists():
        return
    template = template_path()
    if not template.exists():
        _build_template(template)
    partial = db_path.with_suffix(".db.partial")
    shutil.copyfile(template, partial)
    os.replace(partial, db_path)
