"""What tells one trial from another: its varied fields, short, as run name and console columns.

MLflow's runs table cuts a run name after ~30 characters, so a trial's name starts with what the
sweep varies (``method=clade lr_g=2e-4``) and ends with the Tune trial id. Pure functions, no Ray
and no MLflow: the console summary imports them too.
"""

from __future__ import annotations

import math
from typing import Any

SEPARATOR = " · "  # between the varied fields and the trial id in a run name
METHOD_KEY = "method"


def short_value(value: Any) -> str:
    """A value as a person would write it: ``2e-4`` not ``0.0002``, ``64`` not ``64.0``."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e6:
            return str(int(value))
        if value != 0 and math.isfinite(value) and (abs(value) < 1e-2 or abs(value) >= 1e4):
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ",".join(short_value(v) for v in value)
    return str(value)


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each dotted key -> its shortest unambiguous tail (``train.lr_g`` -> ``lr_g``)."""
    out: dict[str, str] = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(o != key and (o == tail or o.endswith("." + tail)) for o in keys):
                break
        out[key] = tail
    return out


def varies_method(search: dict[str, Any]) -> bool:
    """Whether a sweep's ``search`` section (JSON data) makes the method a dimension."""
    return bool(search.get("methods")) or METHOD_KEY in (search.get("space") or {})


def varied_fields(overrides: dict[str, Any], method: str | None = None) -> dict[str, str]:
    """A trial's varied fields, short keys -> short values, the method first.

    Args:
        overrides: The trial's sampled values (dotted spec keys), as Tune handed them.
        method: The trial's method, when the sweep varies it (Tune's overrides do not hold it).
    """
    values = dict(overrides)
    if method is not None:
        values = {METHOD_KEY: method, **{k: v for k, v in values.items() if k != METHOD_KEY}}
    names = short_keys(list(values))
    ordered = sorted(values, key=lambda k: (k != METHOD_KEY, k))
    return {names[k]: short_value(values[k]) for k in ordered}


def varied_label(overrides: dict[str, Any], method: str | None = None) -> str:
    """``method=clade lr_g=2e-4``: the varied fields of a trial on one line ('' when none)."""
    return " ".join(f"{k}={v}" for k, v in varied_fields(overrides, method).items())


def trial_run_name(trial_id: str, overrides: dict[str, Any], method: str | None = None) -> str:
    """The MLflow run name of a trial: its varied fields, then its id."""
    label = varied_label(overrides, method)
    return f"{label}{SEPARATOR}{trial_id}" if label else trial_id


def label_of_run_name(name: str) -> str:
    """The varied-fields part of a trial's run name ('' for a trial that varies nothing)."""
    return name.rsplit(SEPARATOR, 1)[0] if SEPARATOR in name else ""


def fields_of_label(label: str) -> dict[str, str]:
    """``method=clade lr_g=2e-4`` -> {'method': 'clade', 'lr_g': '2e-4'} (a run name's label)."""
    pairs = [part.split("=", 1) for part in label.split(" ") if "=" in part]
    return {k: v for k, v in pairs}
