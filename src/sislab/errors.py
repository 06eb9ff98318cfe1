"""The one exception hierarchy of sislab; a leaf module that every package may import.

Every exception keeps its constructor arguments as attributes and defines ``__reduce__`` so that it
survives pickling between Ray processes with its message intact.
"""

from __future__ import annotations


class SislabError(Exception):
    """Base of every error sislab raises on purpose; the CLI prints it without a traceback.

    Args:
        message: What went wrong, naming the file, field or URI involved.
        fix: How to fix it, one sentence; printed on its own line after ``Fix:``.
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  Fix: {self.fix}"

    def __reduce__(self):
        return (type(self), (self.message, self.fix))


class SpecError(SislabError):
    """A spec (YAML file, override or search space) is invalid.

    Args:
        message: Summary of the problem.
        fix: How to fix it.
        problems: One formatted line per problem, ``FILE:LINE: field.path: message``.
    """

    def __init__(self, message: str, fix: str | None = None, problems: list[str] | None = None):
        self.problems = list(problems or [])
        super().__init__(message, fix)

    def __reduce__(self):
        return (type(self), (self.message, self.fix, self.problems))


class DataError(SislabError):
    """A dataset, shard or sample is missing, corrupt or inconsistent."""


class WeightsError(SislabError):
    """Pretrained weights are missing, or their sha256 does not match the registry."""


class CheckpointError(SislabError):
    """A checkpoint is missing, truncated or belongs to another method or config."""


class ClusterError(SislabError):
    """Ray, the Jobs API or a cluster manifest cannot be used as asked."""


class TrainingError(SislabError):
    """Training cannot go on, e.g. a loss became non-finite with ``train.on_nonfinite: stop``."""
