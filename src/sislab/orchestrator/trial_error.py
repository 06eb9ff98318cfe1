"""A failed Tune trial's error: its full text (Tune's error file) and its own last line.

Runs on the Tune driver. Tune appends one block per failure to the trial's ``error.txt``
(``Failure # N (occurred at ...)`` then the exception, for a Train run Ray's wrapper around the
worker's traceback). The line a person needs is the innermost exception's ``Type: message``,
which Ray prints last; a sislab error's ``Fix:`` line that follows it is kept with it.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

# One failure block of Tune's error file (trial.handle_error writes this header).
_FAILURE_HEADER = re.compile(r"^Failure # \d+ \(occurred at [^)]*\)$", re.MULTILINE)
# "pkg.mod.SomeError: message" or a bare "SomeError"; the dotted module path is dropped.
_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w]*\.)*(?P<line>[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit|Failure)"
    r"(?:: .*)?)$"
)
# Ray's wrappers around the error that happened (a Ray Data task's, a Train worker's): their line
# restates or points to the inner one, which is the line a person needs.
RAY_WRAPPERS = frozenset(
    {"UserCodeException", "WorkerGroupError", "TrainingFailedError", "ControllerError",
     "RayTaskError", "TuneError", "RayActorError", "ActorDiedError"}
)  # fmt: skip
MAX_LINE_CHARS = 500  # an MLflow tag holds 5000; a console line should stay readable


def error_text(trial) -> str:
    """The text of the failure that ended ``trial`` (a Tune ``Trial``); empty when Tune kept
    none. Tune's error file (the driver's local copy, else the one in Tune's storage), then each
    Train worker's own error in full: Ray Train cuts the workers' tracebacks in the file, often
    before the line that matters (a Ray Data task's error is only at the end of it)."""
    path = getattr(trial, "error_file", None)
    text = ""
    if path and Path(path).is_file():
        text = Path(path).read_text(errors="replace")
    else:
        try:
            text = trial.get_error() or ""
        except (OSError, AttributeError):  # storage unreachable, or not a Tune trial
            text = ""
    last = _FAILURE_HEADER.split(text)[-1].strip()
    workers = [f"[worker rank {rank}]\n{error}" for rank, error in worker_errors(trial)]
    return "\n\n".join([last, *workers]).strip()


def worker_errors(trial) -> list[tuple[int, str]]:
    """``(rank, full text)`` of each Train worker's error in the trial's pickled error (Ray
    Train's ``WorkerGroupError.worker_failures``, under Tune's ``RayTaskError``); empty when
    there is none or it cannot be read."""
    try:
        # The driver's local copy first: Tune syncs it to the storage path only later.
        local = getattr(trial, "pickled_error_file", None)
        if local and Path(local).is_file():
            import ray.cloudpickle as cloudpickle  # as Tune pickled it

            error = cloudpickle.loads(Path(local).read_bytes())
        else:
            error = trial.get_pickled_error()
    except Exception:  # unpickling can raise anything; the text file remains
        return []
    for _ in range(4):  # RayTaskError -> .cause -> WorkerGroupError, a few levels at most
        failures = getattr(error, "worker_failures", None)
        if isinstance(failures, dict):
            # format_exception: a worker's own exception keeps its "Type: message" line, and
            # a RayTaskError's text holds the remote traceback.
            return [
                (int(rank), "".join(traceback.format_exception(exc)))
                for rank, exc in sorted(failures.items())
            ]
        error = getattr(error, "cause", None) or getattr(error, "__cause__", None)
        if error is None:
            break
    return []


def error_line(text: str) -> str:
    """The error's own last line, ``Type: message`` (with a ``Fix:`` line that follows it): the
    last exception line that is not one of Ray's wrappers, else the last exception line, else the
    text's last non-empty line."""
    lines = [line.strip() for line in text.splitlines()]
    found: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = _EXCEPTION_LINE.match(line)
        if match:
            found.append((index, match.group("line")))
    own = [(i, line) for i, line in found if line.split(":", 1)[0] not in RAY_WRAPPERS]
    if own or found:
        index, line = (own or found)[-1]
        following = lines[index + 1 : index + 2]
        fix = following if following and following[0].startswith("Fix:") else []
        return _shorten(" ".join([line, *fix]))
    rest = [line for line in lines if line]
    return _shorten(rest[-1]) if rest else "unknown error"


def _shorten(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"
