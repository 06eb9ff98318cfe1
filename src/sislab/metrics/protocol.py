"""The evaluation protocol: everything that changes an FID, mIoU or LPIPS number, as one record.

Papers disagree on the reference split, the resizing, the segmenter and its label mapping
(common.md §7), and the numbers move with each choice. Every evaluated run carries the record as
MLflow tags and a short id of it, and ``sislab compare`` refuses to rank runs measured under
different ids. Named presets reproduce the protocols of the papers.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sislab.errors import SpecError
from sislab.metrics.provenance import WeightsInfo
from sislab.metrics.weights import REGISTRY

PROTOCOL_ID_TAG = "sislab.protocol.id"
PROTOCOL_TAG_PREFIX = "sislab.protocol."
SUBSTITUTE_TAG = "sislab.metrics.substitute_weights"
OFFLINE_TAG = "sislab.protocol.offline"
# Presets no training run can follow (another split, 20 samples per layout): a spec naming one
# trains under its own protocol id, and the command given here evaluates the checkpoint under it.
OFFLINE_PRESETS: dict[str, str] = {"smis-deepfashion": "sislab eval smis CHECKPOINT"}
ID_LENGTH = 12
# Names and prose: changing them changes no number, so they stay out of the id.
_NOT_IN_ID = frozenset({"name", "description"})

Resize = Literal["bilinear", "bicubic", "nearest", "area", "none"]


class EvalProtocol(BaseModel):
    """How the evaluation metrics of a run were computed.

    Fields left ``None`` mean "the run's own" (dataset, resolution) or "metric not computed"
    (segmenter, LPIPS); sha256 fields are filled from the files actually loaded
    (``with_weights``) so that two runs share an id only when they used the same bytes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("custom", description="Preset name, or 'custom'. Not part of the id.")
    description: str = Field("", description="Where the protocol comes from. Not part of the id.")
    dataset: str | None = Field(None, description="Dataset preset name; None: the run's dataset.")
    resolution: tuple[int, int] | None = Field(
        None, description="(H, W) of the generated images; None: the dataset's resolution."
    )
    # FID / KID
    inception_weights: str = Field(
        "fid_inception", description="Registry name of the Inception weights (pytorch-fid's net)."
    )
    inception_sha256: str = Field(
        REGISTRY["fid_inception"].sha256, description="sha256 of the Inception file loaded."
    )
    inception_resize: Resize = Field(
        "bilinear", description="How images reach the Inception input size (pytorch-fid: bilinear)."
    )
    inception_size: int = Field(299, gt=0, description="Inception input side (pytorch-fid: 299).")
    real_resize: Resize = Field(
        "bicubic", description="How real images are brought to the generated resolution first."
    )
    reference_split: str = Field("val", description="Split of the real reference images.")
    reference_count: int | None = Field(
        None, gt=0, description="Real reference images; None: the whole split."
    )
    num_generated: int | None = Field(
        None, gt=0, description="Generated images; None: one per label map of the evaluated split."
    )
    kid_subsets: int = Field(100, gt=0, description="KID: number of random subsets.")
    kid_subset_size: int = Field(1000, gt=0, description="KID: images per subset.")
    # segmentation
    segmenter: str | None = Field(None, description="Segmenter name; None: no mIoU/accuracy.")
    segmenter_sha256: str = Field(
        "", description="sha256 of the segmenter file(s) loaded, comma-joined for several."
    )
    label_mapping: str | None = Field(
        None, description="Name of the dataset-id -> segmenter-id mapping."
    )
    ignore_index: int | None = Field(
        None, description="Segmenter id of don't-care pixels, not scored; None: no segmenter."
    )
    # LPIPS
    lpips_net: Literal["alex", "vgg"] | None = Field(
        None, description="LPIPS trunk; None: no LPIPS metrics."
    )
    lpips_sha256: str = Field("", description="sha256 of the LPIPS trunk file loaded.")
    lpips_version: str = Field("0.1", description="LPIPS linear heads (the lpips package's).")
    diversity_label_maps: int | None = Field(
        None, gt=0, description="Label maps for LPIPS diversity and mCSD/mOCD (GroupDNet: 100)."
    )
    diversity_samples: int | None = Field(
        None, ge=2, description="Samples per label map (and class); None: no diversity metrics."
    )
    diversity_pairing: Literal["consecutive", "all"] | None = Field(
        None, description="Pairs among the samples: consecutive gives samples - 1."
    )
    substitutes: tuple[str, ...] = Field(
        (), description="Networks whose published weights were replaced by random ones."
    )

    @field_validator("inception_sha256", "segmenter_sha256", "lpips_sha256")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("substitutes")
    @classmethod
    def _sorted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The order weights were loaded in changes no number.
        return tuple(sorted(set(value)))


def canonical_json(record: EvalProtocol) -> str:
    """The fields that affect numbers as JSON with sorted keys and no whitespace."""
    data = record.model_dump(mode="json", exclude=set(_NOT_IN_ID))
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def protocol_id(record: EvalProtocol) -> str:
    """Short id (12 hex digits of a sha256) of the fields that affect numbers."""
    return hashlib.sha256(canonical_json(record).encode()).hexdigest()[:ID_LENGTH]


def _tag_value(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def protocol_tags(record: EvalProtocol) -> dict[str, str]:
    """MLflow tags: the id, every field, and the substitute weights (``none`` when none)."""
    tags = {PROTOCOL_ID_TAG: protocol_id(record)}
    for key, value in record.model_dump(mode="json").items():
        tags[f"{PROTOCOL_TAG_PREFIX}{key}"] = _tag_value(value)
    tags[SUBSTITUTE_TAG] = _tag_value(record.substitutes)
    return tags


def with_weights(
    record: EvalProtocol,
    inception: WeightsInfo | None = None,
    segmenter: Iterable[WeightsInfo] = (),
    lpips: WeightsInfo | None = None,
) -> EvalProtocol:
    """The record with the names, sha256s and substitute flags of the networks really loaded."""
    update: dict[str, object] = {}
    loaded: list[WeightsInfo] = []
    if inception is not None:
        update |= {"inception_weights": inception.name, "inception_sha256": inception.sha256}
        loaded.append(inception)
    segmenter = tuple(segmenter)
    if segmenter:
        update["segmenter_sha256"] = ",".join(w.sha256 for w in segmenter)
        loaded.extend(segmenter)
    if lpips is not None:
        update["lpips_sha256"] = lpips.sha256
        loaded.append(lpips)
    substitutes = {*record.substitutes, *(w.name for w in loaded if w.substitute)}
    update["substitutes"] = tuple(substitutes)
    return EvalProtocol.model_validate({**record.model_dump(), **update})


_VAL_FID = "FID against the val split"
_PRESETS: tuple[EvalProtocol, ...] = (
    EvalProtocol(
        name="spade-cityscapes",
        description="SPADE issue #39: DRN-D-105 on the 500 val label maps, " + _VAL_FID,
        dataset="cityscapes",
        resolution=(256, 512),
        reference_count=500,
        num_generated=500,
        segmenter="drn_d_105_cityscapes",
        label_mapping="cityscapes-labelid-to-trainid",
        ignore_index=255,
    ),
    EvalProtocol(
        name="ade20k-upernet",
        description="UperNet101 (CSAIL ade20k-resnet101-upernet) on the 2000 val label maps, "
        + _VAL_FID,
        dataset="ade20k",
        resolution=(256, 256),
        reference_count=2000,
        num_generated=2000,
        segmenter="upernet101_ade20k",
        label_mapping="ade20k-150",
        ignore_index=255,
    ),
    EvalProtocol(
        name="cocostuff-deeplabv2",
        description="DeepLabV2 (deeplab-pytorch cocostuff164k) on the 5000 val label maps, "
        + _VAL_FID,
        dataset="coco-stuff",
        resolution=(256, 256),
        reference_count=5000,
        num_generated=5000,
        segmenter="deeplabv2_cocostuff164k",
        label_mapping="cocostuff-182",
        ignore_index=255,
    ),
    EvalProtocol(
        name="vasis-fid-t",
        description="VASIS FID-t: against the train images, bicubic-downsampled to the "
        "generated resolution",
        reference_split="train",
    ),
    EvalProtocol(
        name="vasis-fid-v",
        description="VASIS FID-v: against the val images, bicubic-downsampled to the generated "
        "resolution",
        reference_split="val",
    ),
    EvalProtocol(
        name="oasis",
        description="OASIS: " + _VAL_FID + " (pytorch-fid's Inception), as during training",
        inception_weights="pt_inception",
        inception_sha256="",
    ),
    EvalProtocol(
        name="smis-deepfashion",
        description="GroupDNet on DeepFashion: FID, LPIPS(AlexNet) diversity and mCSD/mOCD on "
        "100 label maps x 19 consecutive pairs (the CIHP parser is not available in sislab)",
        dataset="deepfashion",
        resolution=(256, 256),
        reference_split="test",
        lpips_net="alex",
        diversity_label_maps=100,
        diversity_samples=20,
        diversity_pairing="consecutive",
    ),
    EvalProtocol(
        name="synthetic-builtin",
        description="synthetic://shapes with a sislab-trained segmenter and LPIPS(AlexNet)",
        dataset="synthetic",
        resolution=(64, 64),
        kid_subsets=10,
        kid_subset_size=100,
        segmenter="builtin",
        label_mapping="identity",
        ignore_index=255,
        lpips_net="alex",
    ),
)


def presets() -> dict[str, EvalProtocol]:
    """The named protocols of the papers (common.md §7), by name."""
    return {p.name: p for p in _PRESETS}


def preset(name: str) -> EvalProtocol:
    """One named protocol.

    Raises:
        SpecError: Unknown name; the fix lists the closest names.
    """
    known = presets()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3) or sorted(known)
        raise SpecError(f"no evaluation protocol {name!r}", fix=f"use one of: {', '.join(close)}")
    return known[name]


def offline_tags(name: str | None) -> dict[str, str]:
    """The tag naming the offline preset a run is meant for (``{}`` for other presets or None).

    The run's own ``sislab.protocol.id`` stays the protocol its in-loop ``eval/*`` metrics were
    computed under; the offline command logs under its own keys and id (``cli.eval_smis``).
    """
    return {OFFLINE_TAG: name} if name in OFFLINE_PRESETS else {}


def preset_differences(record: EvalProtocol, name: str) -> list[str]:
    """What in ``record`` differs from what preset ``name`` pins, one ``key: ...`` line each.

    Fields the preset leaves open (None, empty sha256), its dataset name and its substitute list
    are not compared; a ``+``-joined reference split matches any of its splits.

    Raises:
        SpecError: Unknown preset.
    """
    pinned = preset(name).model_dump()
    actual = record.model_dump()

    def matches(key: str, value) -> bool:
        if key == "reference_split":  # a run computing FID-v and FID-t follows either protocol
            return value in actual[key].split("+")
        return value == actual[key]

    return [
        f"{key}: protocol {value!r}, run {actual[key]!r}"
        for key, value in pinned.items()
        if key not in ("name", "description", "dataset", "substitutes")
        and value not in (None, "")
        and not matches(key, value)
    ]
