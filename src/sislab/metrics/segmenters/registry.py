"""``load_segmenter``: segmenter name -> network with hash-checked weights and its label mapping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from sislab.errors import WeightsError
from sislab.metrics import weights as registry
from sislab.metrics.provenance import WeightsInfo
from sislab.metrics.segmenters import deeplab, drn, upernet
from sislab.metrics.segmenters.base import Normalisation, Segmenter, check_classes, load_strict

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class PaperSegmenter:
    """A published segmenter.

    Attributes:
        dataset: The dataset it scores (manifest name).
        build: Network constructor (random weights).
        parts: ``(submodule path, weights registry name)``: what each file loads into ("" is the
            whole network).
        num_classes: Classes it predicts.
        dataset_classes: sislab training ids of its dataset (don't-care included).
        label_map: Training id -> segmenter id lookup.
        normalisation: Its input normalisation.
        label_mapping: Name of that lookup, as protocol records give it.
    """

    dataset: str
    build: Callable[[], nn.Module]
    parts: tuple[tuple[str, str], ...]
    num_classes: int
    dataset_classes: int
    label_map: Callable[[], torch.Tensor]
    normalisation: Normalisation
    label_mapping: str


SEGMENTERS: dict[str, PaperSegmenter] = {
    "drn_d_105_cityscapes": PaperSegmenter(
        "cityscapes",
        drn.DRNSeg,
        (("", "drn_d_105_cityscapes"),),
        drn.NUM_CLASSES,
        drn.DATASET_CLASSES,
        drn.label_map,
        drn.NORMALISATION,
        "cityscapes-labelid-to-trainid",
    ),
    "deeplabv2_cocostuff164k": PaperSegmenter(
        "coco-stuff",
        deeplab.DeepLabV2MSC,
        (("", "deeplabv2_cocostuff164k"),),
        deeplab.NUM_CLASSES,
        deeplab.DATASET_CLASSES,
        deeplab.label_map,
        deeplab.NORMALISATION,
        "cocostuff-182",
    ),
    "upernet101_ade20k": PaperSegmenter(
        "ade20k",
        upernet.UperNet101,
        (("encoder", "upernet101_ade20k_encoder"), ("decoder", "upernet101_ade20k_decoder")),
        upernet.NUM_CLASSES,
        upernet.DATASET_CLASSES,
        upernet.label_map,
        upernet.NORMALISATION,
        "ade20k-150",
    ),
}

DEFAULT_FOR_DATASET = {spec.dataset: name for name, spec in SEGMENTERS.items()}


def segmenter_names() -> list[str]:
    """Every name ``load_segmenter`` accepts (``builtin:PATH`` stands for any trained file)."""
    return [*SEGMENTERS, "builtin:PATH"]


def load_segmenter(
    name: str,
    *,
    paths: Mapping[str, str] | None = None,
    sha256: Mapping[str, str] | None = None,
    allow_download: bool = False,
    num_classes: int | None = None,
    device: str | torch.device = "cpu",
    allow_substitute: bool = False,
) -> Segmenter:
    """Build a segmenter and load its weights.

    Args:
        name: ``builtin:<path>`` (a file written by ``train_segmenter``) or a key of
            ``SEGMENTERS`` (``drn_d_105_cityscapes``, ``deeplabv2_cocostuff164k``,
            ``upernet101_ade20k``).
        paths: The spec's ``weights.paths`` (registry name -> path or s3:// URI).
        sha256: The spec's ``weights.sha256``; the papers' files need it (no published hash).
        allow_download: The spec's ``weights.allow_download``.
        num_classes: Training ids of the dataset to score, don't-care included; checked
            against the segmenter's dataset. None skips the check.
        device: Torch device.
        allow_substitute: Use random weights when a paper segmenter's file is missing (the
            segmenter then reports ``substitute``; its scores are meaningless except as a
            pipeline check). A file with a wrong sha256 is an error regardless.

    Raises:
        WeightsError: Unknown name, missing file (unless substituting), missing
            ``weights.sha256.NAME``, wrong sha256 or a state dict that does not fit.
        DataError: The dataset's label ids are not the segmenter's.
    """
    if name.startswith(BUILTIN_PREFIX):
        from sislab.metrics.segmenters.builtin import load_builtin

        return load_builtin(name[len(BUILTIN_PREFIX) :], num_classes, str(device))
    spec = SEGMENTERS.get(name)
    if spec is None:
        raise WeightsError(
            f"unknown segmenter {name!r}", fix=f"use one of {', '.join(segmenter_names())}"
        )
    if num_classes is not None:
        check_classes(name, spec.dataset_classes, num_classes, spec.dataset)
    net = spec.build()
    infos = []
    for part, weights_name in spec.parts:
        target = net.get_submodule(part) if part else net
        infos.append(
            _load_part(
                target,
                weights_name,
                dict(paths or {}),
                dict(sha256 or {}),
                allow_download,
                allow_substitute,
            )
        )
    return Segmenter(
        name=name,
        module=net.to(device).eval(),
        num_classes=spec.num_classes,
        label_map=spec.label_map(),
        weights=tuple(infos),
        normalisation=spec.normalisation,
        label_mapping=spec.label_mapping,
    )


def _load_part(
    module: nn.Module,
    weights_name: str,
    paths: dict[str, str],
    sha256: dict[str, str],
    allow_download: bool,
    allow_substitute: bool,
) -> WeightsInfo:
    if allow_substitute and not _available(weights_name, paths, allow_download):
        logger.warning("%s weights not found: random weights stand in", weights_name)
        return WeightsInfo(
            weights_name,
            "",
            substitute=True,
            note=f"random {weights_name} weights: segmentation scores are not comparable",
        )
    path, digest = registry.locate_checked(weights_name, paths, allow_download, sha256)
    state = torch.load(path, map_location="cpu", weights_only=True)
    load_strict(module, _unwrap(state), f"{weights_name} ({path})")
    return WeightsInfo(weights_name, digest)


def _available(weights_name: str, paths: Mapping[str, str], allow_download: bool) -> bool:
    """Whether ``locate`` has a file to check (a configured path, the cache or a download)."""
    entry = registry.REGISTRY[weights_name]
    cached = (registry.weights_dir() / entry.filename).exists()
    return bool(paths.get(weights_name)) or cached or allow_download


def _unwrap(state: Mapping) -> Mapping:
    """The state dict inside a training checkpoint (``{"state_dict": ...}``), else ``state``."""
    inner = state.get("state_dict") if isinstance(state, Mapping) else None
    return inner if isinstance(inner, Mapping) else state
