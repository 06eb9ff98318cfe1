"""Which of a method's dataset presets a ``model:`` config uses on a dataset.

GroupDNet's ``preset: auto`` follows the dataset (its class count); the answer is printed by
``sislab validate``, ``sislab run`` and ``sislab models summary`` and recorded in the resolved spec.
"""

from __future__ import annotations

from pydantic import BaseModel

from sislab.models.geometry import DatasetGeometry
from sislab.models.methods import groupdnet


def preset_in_use(config: BaseModel, geometry: DatasetGeometry) -> str | None:
    """The preset ``config`` builds with on ``geometry`` (None: the method has no presets).

    Args:
        config: A method's ``model:`` section.
        geometry: The dataset's label channels and resolution.
    """
    if isinstance(config, groupdnet.GroupDNetConfig):
        return groupdnet.resolved_preset(config, geometry)
    return getattr(config, "preset", None)


def with_resolved_preset(config: BaseModel, geometry: DatasetGeometry) -> BaseModel:
    """``config`` with ``preset: auto`` replaced by the preset it resolves to on ``geometry``."""
    if getattr(config, "preset", None) != "auto":
        return config
    return config.model_copy(update={"preset": preset_in_use(config, geometry)})
