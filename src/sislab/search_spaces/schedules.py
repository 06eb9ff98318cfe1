"""Generated families of GroupDNet group-decrease schedules (one group number per decoder stage).

A schedule is a plain list such as ``[8, 8, 4, 4, 2, 2, 1]`` (Table 4, DeepFashion), so a sweep can
search over lists directly (``model.decoder_groups: {grid: [[...], [...]]}``); these functions
generate the lists of a family. Whether a schedule fits the channel counts is checked when the
model config is validated (every group number must divide its stage's channels).
"""

from __future__ import annotations

from typing import Literal

ScheduleFamily = Literal["halve_every", "constant_then_one"]


def _check(k: int, start: int, stages: int) -> None:
    if k < 1 or start < 1 or stages < 1:
        raise ValueError(
            f"k, start and stages must be >= 1; got k={k}, start={start}, stages={stages}"
        )


def halve_every(k: int, start: int, stages: int) -> list[int]:
    """Start with ``start`` groups and halve every ``k`` stages, never below 1.

    P-GDN supp. rule 2: "the group number in the previous layer is either equal or 2 times of that
    in the next layer". ``halve_every(2, 8, 7) == [8, 8, 4, 4, 2, 2, 1]`` (Table 4, DeepFashion).

    Args:
        k: Stages per group number.
        start: Groups of the first stage (usually the number of classes).
        stages: Length of the schedule (7 decoder stages, 8 with ``most``).

    Returns:
        The schedule.
    """
    _check(k, start, stages)
    return [max(start // 2 ** (i // k), 1) for i in range(stages)]


def constant_then_one(k: int, start: int, stages: int) -> list[int]:
    """``start`` groups for the first ``k`` stages, then 1 (fully shared) for the rest.

    ``k = stages`` is GroupNet's decoder (groups = classes throughout); ``k = 0`` is not allowed
    (use a list of ones: GroupEnc's decoder).

    Args:
        k: Stages that keep ``start`` groups.
        start: Groups of those stages.
        stages: Length of the schedule.

    Returns:
        The schedule.
    """
    _check(k, start, stages)
    return [start if i < k else 1 for i in range(stages)]


def schedule(family: ScheduleFamily, k: int, start: int, stages: int) -> list[int]:
    """The schedule of a named family (``halve_every`` or ``constant_then_one``).

    Raises:
        ValueError: Unknown family or non-positive arguments.
    """
    if family == "halve_every":
        return halve_every(k, start, stages)
    if family == "constant_then_one":
        return constant_then_one(k, start, stages)
    raise ValueError(
        f"unknown schedule family {family!r}; expected halve_every or constant_then_one"
    )


def family_grid(family: ScheduleFamily, ks: list[int], start: int, stages: int) -> list[list[int]]:
    """Distinct schedules of one family for several ``k``: values for a ``{grid: ...}`` domain.

    Example: ``family_grid("halve_every", [1, 2, 3], 8, 7)`` gives three schedules for
    ``search.space: {model.decoder_groups: {grid: <them>}}``.
    """
    out: list[list[int]] = []
    for k in ks:
        s = schedule(family, k, start, stages)
        if s not in out:
            out.append(s)
    return out
