"""The only place a method name becomes code: one plain dict of methods.

Adding a method is one module in ``sislab.models.methods`` and one line in ``METHODS``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel
from torch import nn

from sislab.errors import SpecError
from sislab.models.geometry import DatasetGeometry
from sislab.models.methods import clade, groupdnet, oasis, scgan, spade, vasis


@dataclass(frozen=True)
class Method:
    """A registered method.

    Args:
        config: Pydantic model of the spec's ``model:`` section, with a ``method`` literal field.
        build_generator: ``(config, geometry) -> nn.Module``.
        build_discriminator: ``(config, geometry) -> nn.Module``.
        build_encoder: ``(config, geometry) -> nn.Module | None`` (None when the config has none).
        procedure: Name of the training procedure in ``sislab.trainers.procedures``.
        paper: Short citation shown by ``sislab models list``.
    """

    config: type[BaseModel]
    build_generator: Callable[[BaseModel, DatasetGeometry], nn.Module]
    build_discriminator: Callable[[BaseModel, DatasetGeometry], nn.Module]
    build_encoder: Callable[[BaseModel, DatasetGeometry], nn.Module | None]
    procedure: str
    paper: str


METHODS: dict[str, Method] = {
    "spade": Method(
        spade.SpadeConfig,
        spade.build_generator,
        spade.build_discriminator,
        spade.build_encoder,
        procedure="spade",
        paper="Park et al., CVPR 2019",
    ),
    "scgan": Method(
        scgan.ScganConfig,
        scgan.build_generator,
        scgan.build_discriminator,
        scgan.build_encoder,
        procedure="scgan",
        paper="Wang et al., ICCV 2021",
    ),
    "clade": Method(
        clade.CladeConfig,
        clade.build_generator,
        clade.build_discriminator,
        clade.build_encoder,
        procedure="spade",
        paper="Tan et al., TPAMI 2021",
    ),
    "clade-icpe": Method(
        clade.CladeIcpeConfig,
        clade.build_generator,
        clade.build_discriminator,
        clade.build_encoder,
        procedure="spade",
        paper="Tan et al., TPAMI 2021 (ICPE)",
    ),
    "oasis": Method(
        oasis.OasisConfig,
        oasis.build_generator,
        oasis.build_discriminator,
        oasis.build_encoder,
        procedure="oasis",
        paper="Sushko et al., ICLR 2021",
    ),
    "va-spade": Method(
        vasis.VaSpadeConfig,
        vasis.build_generator,
        vasis.build_discriminator,
        vasis.build_encoder,
        procedure="spade",
        paper="VASIS (variation-aware SPADE)",
    ),
    "va-clade": Method(
        vasis.VaCladeConfig,
        vasis.build_generator,
        vasis.build_discriminator,
        vasis.build_encoder,
        procedure="spade",
        paper="VASIS (variation-aware CLADE)",
    ),
    "va-oasis": Method(
        oasis.VaOasisConfig,
        oasis.build_generator,
        oasis.build_discriminator,
        oasis.build_encoder,
        procedure="oasis",
        paper="VASIS (variation-aware OASIS)",
    ),
    "groupdnet": Method(
        groupdnet.GroupDNetConfig,
        groupdnet.build_generator,
        groupdnet.build_discriminator,
        groupdnet.build_encoder,
        procedure="groupdnet",
        paper="Zhu et al., CVPR 2020",
    ),
}


def get_method(name: str) -> Method:
    """Return the registered method called ``name``.

    Raises:
        SpecError: The name is unknown; the message lists the closest registered names.
    """
    try:
        return METHODS[name]
    except KeyError:
        close = difflib.get_close_matches(name, METHODS, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise SpecError(
            f"unknown method {name!r}",
            fix=f"{hint}Registered methods: {', '.join(sorted(METHODS))}.",
        ) from None
