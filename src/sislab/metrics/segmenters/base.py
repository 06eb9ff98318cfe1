"""A loaded segmenter: network, input normalisation, label mapping and weights provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from sislab.errors import DataError, WeightsError
from sislab.metrics.provenance import WeightsInfo
from sislab.metrics.segmentation import IGNORE_INDEX


@dataclass(frozen=True)
class Normalisation:
    """How a segmenter wants its input, starting from sislab's RGB in [-1, 1].

    The network sees ``(rgb01 * scale - mean) / std`` with channels reversed first when ``bgr``
    (deeplab-pytorch was converted from Caffe: BGR, 0..255, mean subtracted, no std).
    """

    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    scale: float = 1.0
    bgr: bool = False

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise a float ``(N, 3, H, W)`` batch in [-1, 1]."""
        x = (images.float() + 1.0) * 0.5
        if self.bgr:
            x = x.flip(1)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x * self.scale - mean) / std


@dataclass
class Segmenter:
    """A segmentation network ready to score images.

    Attributes:
        name: Segmenter name (``drn_d_105_cityscapes``, ``builtin:<path>``, ...).
        module: The network in eval mode; ``module(x)`` returns logits ``(N, K, h, w)``.
        num_classes: K, the classes the network predicts.
        label_map: int64 lookup, dataset training id -> segmenter id or ``ignore_index``.
        weights: Provenance of every weights file loaded (UperNet has two).
        normalisation: Input normalisation.
        input_size: ``(H, W)`` the network runs at; None: at the size of the images given.
        ignore_index: Segmenter id of pixels that are not scored.
        label_mapping: Name of ``label_map`` for protocol records (``identity``,
            ``cityscapes-labelid-to-trainid``, ...).
    """

    name: str
    module: nn.Module
    num_classes: int
    label_map: torch.Tensor
    weights: tuple[WeightsInfo, ...]
    normalisation: Normalisation = field(default_factory=Normalisation)
    input_size: tuple[int, int] | None = None
    ignore_index: int = IGNORE_INDEX
    label_mapping: str = "identity"

    @property
    def device(self) -> torch.device:
        """Device of the network's parameters."""
        return next(self.module.parameters()).device

    @property
    def substitute(self) -> bool:
        """Whether random weights stand in for published ones (scores are then not comparable)."""
        return any(w.substitute for w in self.weights)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class ids (segmenter ids) of a float ``(N, 3, H, W)`` batch in [-1, 1].

        The batch is resized (bilinear, antialiased) to ``input_size`` when the network has one;
        logits come back to ``(H, W)`` bilinearly before the argmax, as the papers' tools do.
        """
        h, w = images.shape[-2:]
        x = self.normalisation(images.to(self.device))
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(
                x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True
            )
        logits = self.module(x)
        if tuple(logits.shape[-2:]) != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits.argmax(1)

    def map_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Dataset training ids (any shape) -> segmenter ids, don't-care as ``ignore_index``.

        Raises:
            ValueError: An id the mapping does not cover (the dataset is not the one the
                segmenter was made for).
        """
        labels = labels.to(torch.int64)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(self.label_map)):
            raise ValueError(
                f"label ids {int(labels.min())}..{int(labels.max())} outside the "
                f"{len(self.label_map)} ids {self.name} maps"
            )
        return self.label_map.to(labels.device)[labels]


def identity_map(num_classes: int, dontcare: int | None) -> torch.Tensor:
    """Label map of sislab's training ids onto a segmenter trained on them: the don't-care id
    (always the last training id, see ``datasets.manifest``) becomes ``IGNORE_INDEX``."""
    lut = torch.arange(num_classes, dtype=torch.int64)
    if dontcare is not None:
        lut[dontcare] = IGNORE_INDEX
    return lut


def adapt_state_dict(
    state: Mapping[str, torch.Tensor], module: nn.Module
) -> dict[str, torch.Tensor]:
    """Undo the two harmless differences of published checkpoints, nothing else.

    A ``module.`` prefix (saved from ``nn.DataParallel``) is stripped, and the BatchNorm
    ``num_batches_tracked`` counters that checkpoints written before PyTorch 0.4.1 lack are added
    (they only matter for momentum-free training). Everything else must match ``strict=True``.
    """
    out = {k.removeprefix("module."): v for k, v in state.items()}
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = torch.zeros_like(value)
    return out


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)`` whose failure is a WeightsError naming a few keys.

    Raises:
        WeightsError: Missing or unexpected keys, or a shape mismatch.
    """
    try:
        module.load_state_dict(adapt_state_dict(state, module), strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[:4]
        raise WeightsError(
            f"{what}: the file's state dict does not fit the network: {' '.join(first)[:600]}",
            fix="use the original checkpoint named by the registry (a fine-tuned or "
            "re-exported file has other keys)",
        ) from None


def check_classes(name: str, expected: int, got: int, dataset: str) -> None:
    """Refuse a dataset whose label channels differ from the ones the segmenter maps.

    Raises:
        DataError: ``got != expected``.
    """
    if got != expected:
        raise DataError(
            f"segmenter {name} scores {dataset} ({expected} label ids), but the dataset has {got}",
            fix="use the segmenter of this dataset (see `sislab eval segment --help`) or train "
            "one with `sislab eval train-segmenter`",
        )
