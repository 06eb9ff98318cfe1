"""Geometry presets of the datasets the papers use: label channels, instances, size, upsampling.

Values follow the SPADE code's dataset options (``label_nc``, ``contain_dontcare_label``,
``no_instance``, crop size and aspect ratio) as collected in the method notes (common.md §2).
Class names and colours live with the dataset converters, not here.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from sislab.errors import SpecError
from sislab.models.geometry import DatasetGeometry, UpsamplingMode


@dataclass(frozen=True)
class DatasetPreset:
    """What sizes a network for one of the papers' datasets.

    Args:
        label_nc: Semantic classes without the don't-care class (SPADE's ``label_nc``).
        contain_dontcare: Whether a don't-care class gets its own one-hot channel.
        use_instance: Whether instance edges are an extra input channel.
        height: Output height.
        width: Output width.
        upsampling: The generator's default ``num_upsampling_layers``.
    """

    label_nc: int
    contain_dontcare: bool
    use_instance: bool
    height: int
    width: int
    upsampling: UpsamplingMode

    @property
    def num_classes(self) -> int:
        """One-hot channels: ``label_nc`` plus the don't-care class when present."""
        return self.label_nc + int(self.contain_dontcare)

    def geometry(self) -> DatasetGeometry:
        """The preset as the ``DatasetGeometry`` that model builders take."""
        return DatasetGeometry(
            num_classes=self.num_classes,
            use_instance=self.use_instance,
            height=self.height,
            width=self.width,
            upsampling=self.upsampling,
        )


DATASET_PRESETS: dict[str, DatasetPreset] = {
    # SPADE cityscapes_dataset: 35 labelIds, instances, 512x256 (aspect 2), 'more' -> 36 channels.
    "cityscapes": DatasetPreset(35, False, True, 256, 512, "more"),
    # SPADE ade20k_dataset: 150 classes + don't-care (raw 0), no instances, 256x256 -> 151.
    "ade20k": DatasetPreset(150, True, False, 256, 256, "normal"),
    # SPADE coco_dataset: 182 classes + don't-care (255), instances, 256x256 -> 184.
    "coco-stuff": DatasetPreset(182, True, True, 256, 256, "normal"),
    # SC-GAN celeba config: 18 parts + don't-care, no instances, 512x512, SPADE's 'normal'.
    "celebamask-hq": DatasetPreset(18, True, False, 512, 512, "normal"),
    # SMIS deepfashion: 8 classes, no instances, 256x256, 'more'.
    "deepfashion": DatasetPreset(8, False, False, 256, 256, "more"),
    # sislab's synthetic://shapes default: 8 classes with instance maps, 64x64.
    "synthetic": DatasetPreset(8, False, True, 64, 64, "normal"),
}


def preset_geometry(name: str) -> DatasetGeometry:
    """The ``DatasetGeometry`` of a named dataset preset.

    Args:
        name: One of ``DATASET_PRESETS`` (``cityscapes``, ``ade20k``, ``coco-stuff``, ...).

    Returns:
        Label channels, instance use, output size and default upsampling of that dataset.

    Raises:
        SpecError: The name is unknown; the fix lists the closest preset names.
    """
    try:
        return dataclasses.replace(DATASET_PRESETS[name].geometry(), name=name)
    except KeyError:
        close = difflib.get_close_matches(name, DATASET_PRESETS, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise SpecError(
            f"unknown dataset preset {name!r}",
            fix=f"{hint}Presets: {', '.join(sorted(DATASET_PRESETS))}.",
        ) from None
