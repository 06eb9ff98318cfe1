"""What a network needs to know about its data: label channels and output resolution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UpsamplingMode = Literal["normal", "more", "most"]


@dataclass(frozen=True)
class DatasetGeometry:
    """Channel counts and resolution that size a generator and discriminator.

    Args:
        num_classes: One-hot label channels, the don't-care class included when the dataset has one
            (SPADE's ``label_nc + contain_dontcare_label``).
        use_instance: Whether an instance edge map is appended as one more input channel.
        height: Output image height in pixels.
        width: Output image width in pixels.
        upsampling: SPADE's ``num_upsampling_layers`` default for this dataset.
        name: The dataset's name (its manifest's, a dataset preset's, ``synthetic``); None:
            unknown. SC-GAN's and OASIS's ``preset: auto`` follow it.
    """

    num_classes: int
    use_instance: bool
    height: int
    width: int
    upsampling: UpsamplingMode = "normal"
    name: str | None = None

    @property
    def semantic_nc(self) -> int:
        """Channels of the semantic input: one-hot classes plus the instance edge channel."""
        return self.num_classes + int(self.use_instance)
