"""LPIPS (Zhang et al., CVPR 2018): distances, masked distances and sample diversity.

The ``lpips`` package ships only its linear heads (v0.1); it would fetch the AlexNet/VGG16 trunk
through torchvision's downloader. sislab builds the trunk untrained and loads torchvision's file
through the weights registry instead (``alexnet`` / ``vgg16``), so the sha256 is checked and
nothing downloads unless the spec allows it.

Images are float tensors ``[N, 3, H, W]`` in ``[-1, 1]``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sislab.errors import SpecError, WeightsError
from sislab.metrics.provenance import WeightsInfo
from sislab.metrics.weights import REGISTRY, locate_checked

logger = logging.getLogger(__name__)

LpipsNet = Literal["alex", "vgg"]
Pairing = Literal["consecutive", "all"]

# lpips.pretrained_networks splits torchvision's ``features`` at these indices into slice1..5;
# each slice keeps torchvision's module index as its child name.
_SLICE_ENDS: dict[str, tuple[int, ...]] = {
    "alex": (2, 5, 8, 10, 12),
    "vgg": (4, 9, 16, 23, 30),
}
_BACKBONE_WEIGHTS: dict[str, str] = {"alex": "alexnet", "vgg": "vgg16"}
_BACKBONE_TITLE: dict[str, str] = {"alex": "AlexNet", "vgg": "VGG16"}
SUBSTITUTE_SEED = 0  # the random trunk is the same in every run, so substitute runs agree at least
DEFAULT_BATCH = 16


def backbone_state_dict(
    torchvision_state: dict[str, torch.Tensor], net: LpipsNet
) -> dict[str, torch.Tensor]:
    """Map torchvision's ``features.N.*`` keys onto the lpips trunk's ``sliceK.N.*`` keys.

    The classifier keys of the torchvision file are dropped: LPIPS reads conv features only.

    Raises:
        WeightsError: The state dict has no ``features.*`` keys (not a torchvision classifier file).
    """
    ends = _SLICE_ENDS[net]
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in torchvision_state.items():
        prefix, _, rest = key.partition(".")
        if prefix != "features":
            continue
        index = int(rest.partition(".")[0])
        slice_no = next((k for k, end in enumerate(ends, 1) if index < end), None)
        if slice_no is not None:
            mapped[f"slice{slice_no}.{rest}"] = tensor
    if not mapped:
        raise WeightsError(
            f"the {_BACKBONE_WEIGHTS[net]} file holds no 'features.*' tensors",
            fix=f"use torchvision's {REGISTRY[_BACKBONE_WEIGHTS[net]].filename}",
        )
    return mapped


def _build(net: LpipsNet) -> nn.Module:
    import lpips

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(SUBSTITUTE_SEED)
        # lpips still calls torchvision with the deprecated ``pretrained=False``.
        warnings.filterwarnings("ignore", message=".*'pretrained' is deprecated.*")
        warnings.filterwarnings("ignore", message=".*Arguments other than a weight enum.*")
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    return model.eval().requires_grad_(False)


def load_lpips(
    net: LpipsNet = "alex",
    paths: dict[str, str] | None = None,
    allow_download: bool = False,
    sha256: dict[str, str] | None = None,
    device: torch.device | str = "cpu",
    allow_substitute: bool = False,
) -> tuple[nn.Module, WeightsInfo]:
    """LPIPS v0.1 with the package's linear heads and torchvision's trunk from the registry.

    Args:
        net: ``alex`` (the papers' LPIPS) or ``vgg``.
        paths: The spec's ``weights.paths``.
        allow_download: The spec's ``weights.allow_download``.
        sha256: The spec's ``weights.sha256``.
        device: Where the module lives.
        allow_substitute: Keep a random (seeded) trunk when the file is missing; the returned
            info then says ``substitute=True`` and the scores are not comparable to anyone's.

    Returns:
        The module (eval mode, no gradients) and where its trunk came from.

    Raises:
        SpecError: Unknown net.
        WeightsError: The trunk file is missing (without ``allow_substitute``; the message
            says which file to put where), has the wrong sha256, or does not fit the trunk.
    """
    if net not in _SLICE_ENDS:
        raise SpecError(f"unknown LPIPS net {net!r}", fix="use alex or vgg")
    name = _BACKBONE_WEIGHTS[net]
    try:
        path, digest = locate_checked(name, paths or {}, allow_download, sha256)
    except WeightsError as err:
        if not (allow_substitute and "not found" in err.message):
            raise
        note = (
            f"random {_BACKBONE_TITLE[net]} backbone (seed {SUBSTITUTE_SEED}): LPIPS values are "
            f"not comparable ({err.message})"
        )
        logger.warning("LPIPS: %s", note)
        return _build(net).to(device), WeightsInfo(name, "", substitute=True, note=note)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = _build(net)
    try:
        model.net.load_state_dict(backbone_state_dict(state, net), strict=True)
    except RuntimeError as err:  # missing or misshapen tensors: not torchvision's file
        raise WeightsError(
            f"{name} weights at {path} do not fit the LPIPS {_BACKBONE_TITLE[net]} trunk: {err}",
            fix=f"use torchvision's {REGISTRY[name].filename}",
        ) from err
    return model.to(device), WeightsInfo(name, digest)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _batches(n: int, size: int) -> Iterable[slice]:
    return (slice(i, min(i + size, n)) for i in range(0, n, size))


@torch.no_grad()
def lpips_distance(
    model: nn.Module, a: torch.Tensor, b: torch.Tensor, batch_size: int = DEFAULT_BATCH
) -> torch.Tensor:
    """LPIPS of each pair ``(a[i], b[i])``, as lpips' own forward computes it: shape ``[N]``."""
    device = _device(model)
    out = [
        model(a[s].to(device), b[s].to(device)).flatten().cpu()
        for s in _batches(len(a), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0)


def layer_maps(model: nn.Module, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's weighted squared feature difference ``[N, 1, h_k, w_k]`` at its own size.

    lpips' distance is the sum over layers of each map's spatial mean; this is that computation
    stopped before the mean (``lpips.LPIPS.forward`` with ``lpips=True``, version 0.1).
    """
    import lpips

    outs_a = model.net(model.scaling_layer(a))
    outs_b = model.net(model.scaling_layer(b))
    maps = []
    for k in range(model.L):
        diff = (lpips.normalize_tensor(outs_a[k]) - lpips.normalize_tensor(outs_b[k])) ** 2
        maps.append(model.lins[k](diff))
    return maps


@torch.no_grad()
def region_lpips(
    model: nn.Module,
    a: torch.Tensor,
    b: torch.Tensor,
    regions: torch.Tensor,
    batch_size: int = DEFAULT_BATCH,
) -> torch.Tensor:
    """LPIPS of each pair restricted to each of R regions: ``[N, R]``, NaN for an empty region.

    Each layer's map is averaged with the region as weights, the region being area-resampled to
    that layer's resolution (the fraction of each feature cell inside it), and the layers are
    summed as in lpips. Weighting each layer at its own resolution, rather than the bilinearly
    upsampled ``spatial=True`` map, makes an all-ones mask give exactly lpips' distance.

    Args:
        model: From ``load_lpips``.
        a: Images ``[N, 3, H, W]`` in ``[-1, 1]``.
        b: Images like ``a``.
        regions: ``[R, H, W]`` (the same regions for every pair) or ``[N, R, H, W]``; bool, or
            weights in ``[0, 1]``.
        batch_size: Pairs per forward.
    """
    if regions.shape[-2:] != a.shape[-2:]:
        raise ValueError(f"regions of size {tuple(regions.shape[-2:])} for images {tuple(a.shape)}")
    device = _device(model)
    weights = regions.float()
    out = []
    for s in _batches(len(a), batch_size):
        w = weights.to(device) if weights.dim() == 3 else weights[s].to(device)
        total = torch.zeros(s.stop - s.start, w.shape[-3], device=device)
        for layer in layer_maps(model, a[s].to(device), b[s].to(device)):
            cell = F.adaptive_avg_pool2d(w, layer.shape[-2:])
            # [n, 1, h, w] x [(n,) R, h, w] -> [n, R]: the weighted mean over each region
            total += (layer * cell).sum((-2, -1)) / cell.sum((-2, -1))
        out.append(total.cpu())
    return torch.cat(out) if out else torch.zeros(0, weights.shape[-3])


def masked_lpips(
    model: nn.Module,
    a: torch.Tensor,
    b: torch.Tensor,
    mask: torch.Tensor,
    batch_size: int = DEFAULT_BATCH,
) -> torch.Tensor:
    """LPIPS of each pair inside one region per pair (``mask`` ``[N, H, W]``): ``[N]``.

    See ``region_lpips`` for the weighting; the mean is normalised by the region's area.
    """
    return region_lpips(model, a, b, mask.unsqueeze(1), batch_size)[:, 0]


def sample_pairs(n: int, pairing: Pairing = "consecutive") -> tuple[list[int], list[int]]:
    """Index pairs among ``n`` samples of one layout.

    ``consecutive`` gives ``(0, 1), (1, 2), ...``: ``n - 1`` pairs, the default of
    PerceptualSimilarity's ``lpips_1dir_allpairs.py``, so 20 samples give the 19 pairs per input of
    BicycleGAN/MUNIT that GroupDNet follows (m = 19). ``all`` gives the ``n (n - 1) / 2`` pairs.
    """
    if n < 2:
        raise ValueError(f"diversity needs at least 2 samples, got {n}")
    if pairing == "consecutive":
        return list(range(n - 1)), list(range(1, n))
    first, second = torch.triu_indices(n, n, offset=1).tolist()
    return first, second


def lpips_diversity(
    model: nn.Module,
    samples: torch.Tensor,
    pairing: Pairing = "consecutive",
    batch_size: int = DEFAULT_BATCH,
) -> float:
    """Mean LPIPS between generated samples of one label map (see ``sample_pairs``)."""
    first, second = sample_pairs(len(samples), pairing)
    return float(lpips_distance(model, samples[first], samples[second], batch_size).mean())


def mean_lpips_diversity(
    model: nn.Module,
    generate: Callable[[torch.Tensor, int], torch.Tensor],
    labels: Iterable[torch.Tensor],
    samples: int = 20,
    pairing: Pairing = "consecutive",
    batch_size: int = DEFAULT_BATCH,
) -> float:
    """The papers' overall LPIPS diversity: ``lpips_diversity`` averaged over label maps.

    Args:
        model: From ``load_lpips``.
        generate: ``(label [H, W], n) -> [n, 3, H, W]``: n samples for one label map with all
            latents resampled.
        labels: The label maps (GroupDNet and BicycleGAN: 100).
        samples: Samples per label map (20 consecutive pairs -> 19 pairs, as in the papers).
        pairing: See ``sample_pairs``.
        batch_size: Pairs per LPIPS forward.
    """
    scores = [
        lpips_diversity(model, generate(label, samples), pairing, batch_size) for label in labels
    ]
    if not scores:
        raise ValueError("no label maps given")
    return sum(scores) / len(scores)
