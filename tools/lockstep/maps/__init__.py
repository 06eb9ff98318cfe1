"""Per-method maps official -> sislab: options on both sides, parameter/buffer names, losses.

Each module defines ``MAP``, a ``MethodMap``; ``get(name)`` returns it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

MODULES = {
    "clade": "clade",
    "clade-icpe": "clade",
    "oasis": "oasis",
    "oasis-dontcare": "oasis",
    "va-spade": "vasis",
    "va-clade": "vasis",
    "va-oasis": "vasis",
}


@dataclass(frozen=True)
class Setup:
    """The study's size: classes (one-hot channels), image size, batch, instance edges."""

    method: str
    classes: int
    height: int
    width: int
    batch: int
    use_instance: bool


@dataclass(frozen=True)
class MethodMap:
    """What the harness needs to run one method on both sides.

    Attributes:
        repo: Subfolder of ``$OFFICIAL_ROOT`` holding the official tree.
        kind: ``pix2pix`` (SPADE-style trainer) or ``oasis`` (OASIS ``train.py`` loop).
        official_argv: Setup -> the official ``train.py`` command line.
        dataset_opts: Setup -> attributes the official dataset class would set (OASIS only).
        sislab_spec: Setup -> the sislab spec mapping.
        key_maps: net name (``G``, ``D``, ``EMA``) -> official state_dict key -> sislab key.
        losses: official loss name -> sislab loss-term name.
        extra_batch: Setup, label (B, 1, H, W) -> extra official data entries (CLADE-ICPE's
            ``dist``), or None.
        value_maps: net name -> (official key, tensor) -> tensor in sislab's layout, for
            entries whose layout differs (OASIS: the 3D-noise input channels); None: as is.
        sislab_method: sislab's method name when it differs from the harness's (variants
            such as ``oasis-dontcare``).
    """

    repo: str
    kind: str
    official_argv: Callable
    sislab_spec: Callable
    key_maps: dict
    losses: dict
    dataset_opts: Callable | None = None
    sislab_method: str | None = None
    value_maps: dict | None = None

    def value(self, net: str, key: str, tensor):
        """An official tensor (parameter, buffer or gradient) in sislab's layout."""
        fn = (self.value_maps or {}).get(net)
        return tensor if fn is None else fn(key, tensor)

    extra_batch: Callable | None = None


def get(method: str) -> MethodMap:
    """The map of ``method``."""
    module = importlib.import_module(f"maps.{MODULES[method]}")
    return module.map_for(method)


def spectral_norm_key(key: str) -> str:
    """torch's old spectral-norm hook names -> the parametrization API's (sislab)."""
    key = key.replace(".weight_orig", ".parametrizations.weight.original")
    key = key.replace(".weight_u", ".parametrizations.weight.0._u")
    return key.replace(".weight_v", ".parametrizations.weight.0._v")
