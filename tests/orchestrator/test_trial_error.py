"""A failed trial's error, read as Tune leaves it: the full text and the error's own last line."""

from __future__ import annotations

import traceback
from pathlib import Path
from types import SimpleNamespace

from sislab.errors import DataError
from sislab.orchestrator.trial_error import error_line, error_text


def _traceback_of(exc: BaseException) -> str:
    try:
        raise exc
    except BaseException as raised:
        return "".join(traceback.format_exception(raised))


def _ray_like(inner: str) -> str:
    """Ray Train's wrapper as Tune writes it: the driver's frames, then the worker's traceback."""
    return (
        "ray::_Inner.train() (pid=1, ip=127.0.0.1)\n"
        '  File "/x/ray/tune/trainable/function_trainable.py", line 261, in _trainable_func\n'
        "ray.train.WorkerGroupError: Training failed due to worker errors:\n"
        "[Rank 0 Error Snippet]:\n" + inner
    )


def test_last_line_is_the_workers_exception_with_its_fix() -> None:
    inner = _traceback_of(DataError("corrupt sample in shard train/part-0.parquet row 2",
                                    fix="set dataset.on_corrupt: skip"))  # fmt: skip
    assert error_line(_ray_like(inner)) == (
        "DataError: corrupt sample in shard train/part-0.parquet row 2 "
        "Fix: set dataset.on_corrupt: skip"
    )
    runtime = _traceback_of(RuntimeError("Kernel size can't be greater than actual input size"))
    assert error_line(_ray_like(runtime)) == (
        "RuntimeError: Kernel size can't be greater than actual input size"
    )


def test_ray_wrappers_after_the_error_do_not_hide_it() -> None:
    inner = _traceback_of(DataError("corrupt sample row 2", fix="set dataset.on_corrupt: skip"))
    text = (
        _ray_like(inner)
        + "\nThe above exception was the direct cause of the following exception:\n\n"
        + "ray.data.exceptions.UserCodeException: UDF failed to process a data block.\n"
    )
    assert error_line(text) == "DataError: corrupt sample row 2 Fix: set dataset.on_corrupt: skip"
    assert error_line("ray.train.WorkerGroupError: workers died") == (
        "WorkerGroupError: workers died"
    )


def test_text_without_exception_line_gives_its_last_line() -> None:
    assert error_line("something odd\nworker died\n\n") == "worker died"
    assert error_line("") == "unknown error"
    assert len(error_line("ValueError: " + "x" * 2000)) == 500


def test_error_text_is_the_last_failure_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "error.txt"
    path.write_text(
        "Failure # 1 (occurred at 2026-12-04_23-01-02)\nValueError: first\n"
        "Failure # 2 (occurred at 2026-12-04_23-02-03)\nTypeError: second\n"
    )
    trial = SimpleNamespace(error_file=str(path))
    assert error_text(trial) == "TypeError: second"
    assert error_line(error_text(trial)) == "TypeError: second"
    kept_in_storage = SimpleNamespace(error_file=None, get_error=lambda: "KeyError: 'x'")
    assert error_text(kept_in_storage) == "KeyError: 'x'"


def test_worker_errors_come_from_tunes_local_pickled_error(tmp_path: Path) -> None:
    """Ray Train cuts the workers' tracebacks in error.txt; the pickled WorkerGroupError keeps
    each worker's error whole, and that is where the line comes from."""
    import ray.cloudpickle as cloudpickle
    from ray.train import WorkerGroupError

    worker = DataError("corrupt sample in shard train/part-00000.parquet row 2 (key 'k02')",
                       fix="set dataset.on_corrupt: skip")  # fmt: skip
    error = WorkerGroupError("... (Output truncated) ...", {0: worker, 1: worker})
    (tmp_path / "error.pkl").write_bytes(cloudpickle.dumps(error))
    (tmp_path / "error.txt").write_text(
        "Failure # 1 (occurred at 2026-12-05_00-10-28)\n"
        + _ray_like("... (Output truncated) ...\n")
        + "ray.exceptions.UserCodeException: UDF failed to process a data block.\n"
    )
    trial = SimpleNamespace(
        error_file=str(tmp_path / "error.txt"), pickled_error_file=str(tmp_path / "error.pkl")
    )
    text = error_text(trial)
    assert "[worker rank 1]\nsislab.errors.DataError: corrupt sample" in text
    assert error_line(text) == (
        "DataError: corrupt sample in shard train/part-00000.parquet row 2 (key 'k02') "
        "Fix: set dataset.on_corrupt: skip"
    )
