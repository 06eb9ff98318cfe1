"""``dataset.json``: the manifest of a sharded dataset, and the label-id mapping it implies.

Labels are stored with their source ids (Cityscapes labelIds, ADE20K's 0..150, COCO-Stuff's
0..181 + 255). Training ids follow the SPADE code convention: the non-don't-care classes in
ascending source-id order become ``0..L-1`` and the don't-care id becomes ``L`` (ADE20K
``label - 1`` with ``-1 -> 150``, COCO-Stuff ``255 -> 182``; NVlabs/SPADE data/ade20k_dataset.py,
data/coco_dataset.py ``postprocess``), so that ``num_classes = L + 1`` as in common.md §1.
"""

from __future__ import annotations

import json
import posixpath
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sislab.datasets.storage import Location, read_bytes, write_bytes
from sislab.errors import DataError

FORMAT_VERSION = 1
MANIFEST_NAME = "dataset.json"

Byte = Annotated[int, Field(ge=0, le=255)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassInfo(_Model):
    """One class of the label map."""

    id: int = Field(ge=0, le=255, description="Pixel value of the class in the stored label PNGs.")
    name: str = Field(description="Class name.")
    colour: tuple[Byte, Byte, Byte] = Field(description="RGB colour for visualisations.")


class ShardInfo(_Model):
    """One Parquet shard of a split."""

    path: str = Field(
        description="Path relative to the dataset root, e.g. train/part-00000.parquet."
    )
    rows: int = Field(ge=0, description="Number of rows (samples).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the shard file.")

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        norm = posixpath.normpath(value)
        if (
            "://" in value
            or value.startswith("/")
            or "\\" in value
            or norm == ".."
            or norm.startswith("../")
        ):
            raise ValueError(f"shard path {value!r} must be relative and stay inside the root")
        return norm


class SplitInfo(_Model):
    """The shards of one split."""

    shards: list[ShardInfo] = Field(default_factory=list, description="Shards in order.")

    @property
    def rows(self) -> int:
        """Total rows of the split."""
        return sum(s.rows for s in self.shards)


class Manifest(_Model):
    """Contents of ``dataset.json``."""

    name: str = Field(description="Dataset name, e.g. cityscapes.")
    format_version: Literal[1] = Field(FORMAT_VERSION, description="Shard format version.")
    classes: list[ClassInfo] = Field(description="Classes by stored id, don't-care included.")
    dontcare_id: int | None = Field(
        None, ge=0, le=255, description="Stored id of the don't-care class (null: none)."
    )
    has_instance: bool = Field(False, description="Whether rows carry instance-id maps.")
    splits: dict[str, SplitInfo] = Field(default_factory=dict, description="Split name -> shards.")

    @field_validator("classes")
    @classmethod
    def _unique_ids(cls, value: list[ClassInfo]) -> list[ClassInfo]:
        ids = [c.id for c in value]
        if len(set(ids)) != len(ids):
            raise ValueError("class ids must be unique")
        return value

    @property
    def num_classes(self) -> int:
        """One-hot channels: every class, the don't-care class included (DatasetGeometry)."""
        return len(self.classes) + int(
            self.dontcare_id is not None and self.dontcare_id not in {c.id for c in self.classes}
        )

    def split(self, name: str, uri: str, fix: str) -> SplitInfo:
        """The split ``name``.

        Raises:
            DataError: The manifest has no such split; the message names ``uri`` and the splits
                it has, with ``fix``.
        """
        if name not in self.splits:
            raise DataError(
                f"dataset {uri} has no split {name!r} (it has {sorted(self.splits)})", fix=fix
            )
        return self.splits[name]

    def training_ids(self) -> np.ndarray:
        """Lookup (256,) int16: stored id -> training id; -1 marks ids not in the table."""
        lut = np.full(256, -1, dtype=np.int16)
        regular = sorted(c.id for c in self.classes if c.id != self.dontcare_id)
        lut[regular] = np.arange(len(regular), dtype=np.int16)
        if self.dontcare_id is not None:
            lut[self.dontcare_id] = len(regular)
        return lut

    def training_classes(self) -> list[ClassInfo]:
        """Classes re-indexed to training ids (the don't-care class last)."""
        by_id = {c.id: c for c in self.classes}
        regular = sorted(i for i in by_id if i != self.dontcare_id)
        out = [by_id[s].model_copy(update={"id": i}) for i, s in enumerate(regular)]
        if self.dontcare_id is not None:
            dc = by_id.get(self.dontcare_id)
            out.append(
                ClassInfo(id=len(regular), name=dc.name if dc else "dontcare", colour=(0, 0, 0))
            )
        return out


def load_manifest(location: Location) -> Manifest:
    """Read and validate ``dataset.json`` under ``location``.

    Raises:
        DataError: Missing, unreadable or invalid manifest.
    """
    path = location.path(MANIFEST_NAME)
    try:
        raw = read_bytes(location.fs, path)
    except (FileNotFoundError, OSError) as err:
        raise DataError(
            f"cannot read {location.display(MANIFEST_NAME)}: {err}",
            fix="point dataset.uri at a folder written by `sislab data convert` or `data synth`",
        ) from None
    try:
        return Manifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as err:
        raise DataError(f"invalid manifest {location.display(MANIFEST_NAME)}: {err}") from None


def save_manifest(location: Location, manifest: Manifest) -> None:
    """Write ``dataset.json`` under ``location`` (last, after every shard it lists)."""
    data = json.dumps(manifest.model_dump(mode="json"), indent=2).encode()
    write_bytes(location.fs, location.path(MANIFEST_NAME), data)
