"""Which of a method's dataset presets a ``model:`` config uses on a dataset.

``preset: auto`` (the default of GroupDNet, SC-GAN, OASIS and VA-OASIS) follows the dataset:
GroupDNet's by class count, SC-GAN's and OASIS's by the dataset's name (else its class count).
:func:`with_resolved_preset` replaces ``auto`` by that preset at the places that know the dataset
(the preflight of ``sislab validate``/``run``, a trial switched to another method); the answer is
printed and recorded in the resolved spec.
"""

from __future__ import annotations

from pydantic import BaseModel

from sislab.datasets.presets import DATASET_PRESETS
from sislab.models.geometry import DatasetGeometry
from sislab.models.methods import groupdnet, oasis, scgan

# Dataset (a DATASET_PRESETS name) -> the preset each method's official code has for it.
SCGAN_DATASETS: dict[str, str] = {
    "ade20k": "ade20k",
    "coco-stuff": "coco",
    "celebamask-hq": "celeba",
    "cityscapes": "cityscapes",
}
OASIS_DATASETS: dict[str, str] = {name: name for name in oasis.OASIS_PRESETS}


def dataset_name(geometry: DatasetGeometry) -> str | None:
    """The dataset preset ``geometry`` is: its name when it is one (``synthetic`` included), else
    the one paper dataset with its class count, else None."""
    if geometry.name in DATASET_PRESETS:
        return geometry.name
    same = [
        name
        for name, preset in DATASET_PRESETS.items()
        if name != "synthetic" and preset.num_classes == geometry.num_classes
    ]
    return same[0] if len(same) == 1 else None


def _datasets_of(config: BaseModel) -> dict[str, str] | None:
    if isinstance(config, scgan.ScganConfig):
        return SCGAN_DATASETS
    if isinstance(config, oasis.OasisFields):
        return OASIS_DATASETS
    return None


def preset_in_use(config: BaseModel, geometry: DatasetGeometry) -> str | None:
    """The preset ``config`` builds with on ``geometry`` (None: the method has no presets, or
    none for this dataset).

    Args:
        config: A method's ``model:`` section.
        geometry: The dataset's name, label channels and resolution.
    """
    if isinstance(config, groupdnet.GroupDNetConfig):
        return groupdnet.resolved_preset(config, geometry)
    preset = getattr(config, "preset", None)
    datasets = _datasets_of(config)
    if preset == "auto" and datasets is not None:
        return datasets.get(dataset_name(geometry) or "")
    return preset


def auto_reason(config: BaseModel, geometry: DatasetGeometry) -> str:
    """Why ``preset: auto`` chose what it chose, for the preflight's line."""
    if isinstance(config, groupdnet.GroupDNetConfig):
        return f"the dataset has {geometry.num_classes} classes"
    name = dataset_name(geometry)
    if name is None:
        return f"the dataset ({geometry.num_classes} classes) is none of the papers'"
    if preset_in_use(config, geometry) is None:
        return f"the dataset is {name}, which has no preset: the defaults"
    return f"the dataset is {name}"


def with_resolved_preset(config: BaseModel, geometry: DatasetGeometry) -> BaseModel:
    """``config`` with ``preset: auto`` replaced by the preset it resolves to on ``geometry``.

    SC-GAN's and OASIS's presets fill the fields the user did not set, which pydantic knows only
    for a config validated from the user's data: after a ``model_dump`` and validation every
    field counts as set. Resolve before that (the preflight resolves the spec file's config, a
    trial the config its method switch starts from).

    Args:
        config: A method's ``model:`` section, as validated from the user's data.
        geometry: The dataset's name, label channels and resolution.

    Returns:
        The config to build and record; ``config`` itself when its preset is not ``auto``.
    """
    if getattr(config, "preset", None) != "auto":
        return config
    preset = preset_in_use(config, geometry)
    if isinstance(config, groupdnet.GroupDNetConfig):
        return config.model_copy(update={"preset": preset})
    explicit = config.model_dump(include=config.model_fields_set - {"preset"})
    return type(config).model_validate({**explicit, "preset": preset})
