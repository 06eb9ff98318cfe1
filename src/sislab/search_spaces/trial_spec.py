"""One configuration of a search applied to the base spec: the method switch, then the overrides.

The method is not an ordinary override: a spec's ``model`` section belongs to its method. When a
configuration names another method, the model section restarts from that method's defaults and
keeps the base spec's model fields that the user changed (value differs from the base method's
default) and that the new method also has, e.g. ``ngf: 8`` of a smoke test. A ``preset`` names one
method's configuration, so it is never carried over, and the values the base method's preset filled
in count as its defaults: the new method's ``preset: auto`` follows the dataset instead.
"""

from __future__ import annotations

import copy
from typing import Any

from sislab.models.geometry import DatasetGeometry
from sislab.models.presets import with_resolved_preset
from sislab.models.registry import METHODS
from sislab.search_spaces.space import METHOD_KEY
from sislab.spec.overrides import resolve
from sislab.spec.spec import Spec


def switch_method(data: dict[str, Any], method: str) -> dict[str, Any]:
    """Spec data (as ``Spec.model_dump(mode="json")``) moved to ``method``.

    Args:
        data: The base spec's data.
        method: A registered method name.

    Returns:
        New data; ``data`` is unchanged. Same method: a copy.
    """
    data = copy.deepcopy(data)
    base = data.get(METHOD_KEY)
    if base == method:
        return data
    model = data.get("model") or {}
    base_defaults = _defaults(base, model.get("preset")) if base in METHODS else {}
    target_fields = set(METHODS[method].config.model_fields) - {METHOD_KEY, "preset"}
    kept = {
        k: v
        for k, v in model.items()
        if k in target_fields and (k not in base_defaults or base_defaults[k] != v)
    }
    data[METHOD_KEY] = method
    data["model"] = {**kept, METHOD_KEY: method}
    return data


def _defaults(method: str, preset: Any) -> dict[str, Any]:
    # The method's defaults under the config's preset (SC-GAN's, OASIS's fill in fields).
    config = METHODS[method].config
    try:
        return config.model_validate({"preset": preset} if preset else {}).model_dump(mode="json")
    except ValueError:  # not a preset of this method: validation reports it elsewhere
        return config().model_dump(mode="json")


def split_method(overrides: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The configuration's method (None: the base spec's) and its other overrides."""
    rest = dict(overrides)
    return rest.pop(METHOD_KEY, None), rest


def trial_spec(
    spec: Spec, overrides: dict[str, Any], geometry: DatasetGeometry | None = None
) -> Spec:
    """The spec of one configuration: method switched, overrides applied, validated.

    Args:
        spec: The base spec.
        overrides: The configuration (``method`` and dotted overrides).
        geometry: The dataset's; given, a switched method's ``preset: auto`` is resolved for it
            before the overrides (which win).

    Raises:
        SpecError: The configuration gives an invalid spec.
    """
    method, rest = split_method(overrides)
    if method is not None and method != spec.method:
        spec = Spec.model_validate(switch_method(spec.model_dump(mode="json"), method))
        if geometry is not None:
            spec = spec.model_copy(update={"model": with_resolved_preset(spec.model, geometry)})
    return resolve(spec, rest)
