"""GroupDNet's applications over a checkpoint (P-GDN Sec. 4.4.3): per-class multi-modal synthesis,
appearance mixture, semantic manipulation and style morphing, each written as an image grid.

Every function takes a generator with per-class latents, ``generator(semantics, z)`` with
``z (B, C, 8, h, w)`` (``GroupDGenerator``), and, where images are encoded, the group encoder
``encoder(image, semantics) -> (mu, logvar)``. The posterior mean is used as an image's code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from sislab.errors import CheckpointError
from sislab.models.geometry import DatasetGeometry
from sislab.models.registry import get_method
from sislab.models.semantic_input import semantic_input
from sislab.spec.loader import spec_from_dict
from sislab.spec.spec import Spec
from sislab.trainers.checkpoint import load_checkpoint, read_meta
from sislab.trainers.sample_grid import palette


@dataclass
class SmisModel:
    """Networks of a trained checkpoint, in eval mode.

    Args:
        generator: ``generator(semantics, z (B, C, 8, h, w))``.
        encoder: ``encoder(image, semantics) -> (mu, logvar)``.
        geometry: Classes and resolution.
    """

    generator: nn.Module
    encoder: nn.Module
    geometry: DatasetGeometry


def load_smis_model(folder: Path, spec: Spec | None = None) -> SmisModel:
    """Rebuild the generator and encoder of a checkpoint folder (meta.json + state.pt).

    Args:
        folder: Checkpoint folder.
        spec: The trial's spec; None: the resolved spec stored in meta.json.

    Raises:
        CheckpointError: No spec is available, or the method has no per-class encoder.
    """
    from sislab.trainers.build import dataset_geometry

    meta = read_meta(folder)
    if spec is None:
        if meta.config is None:
            raise CheckpointError(
                f"{folder}: meta.json holds no spec to rebuild the networks",
                fix="pass --spec with the trial's spec file",
            )
        spec = spec_from_dict(meta.config)
    method = get_method(spec.method)
    geometry = dataset_geometry(spec)
    _, state = load_checkpoint(folder, spec.method)
    generator = method.build_generator(spec.model, geometry)
    encoder = method.build_encoder(spec.model, geometry)
    if encoder is None or not hasattr(generator, "latent_shape"):
        raise CheckpointError(
            f"{folder}: method {spec.method!r} has no per-class latents",
            fix="use a groupdnet checkpoint",
        )
    generator.load_state_dict(state["procedure"]["generator"])
    encoder.load_state_dict(state["procedure"]["encoder"])
    return SmisModel(generator.eval(), encoder.eval(), geometry)


def _semantics(model: SmisModel, label: torch.Tensor) -> torch.Tensor:
    return semantic_input(label, None, model.geometry)


@torch.no_grad()
def multimodal(
    model: SmisModel, label: torch.Tensor, class_id: int, num_samples: int, seed: int = 0
) -> list[torch.Tensor]:
    """Resample only class ``class_id``'s latent; every other class keeps one fixed draw.

    Args:
        model: Networks.
        label: (1, 1, H, W) class ids.
        class_id: Class to restyle.
        num_samples: Images to draw.
        seed: Seed of the draws.

    Returns:
        ``num_samples`` images (3, H, W) in [-1, 1].
    """
    rng = torch.Generator().manual_seed(seed)
    semantics = _semantics(model, label)
    base = model.generator.sample_latent(1, torch.device("cpu"), rng)
    images = []
    for _ in range(num_samples):
        z = base.clone()
        z[:, class_id] = torch.randn(z[:, class_id].shape, generator=rng)
        images.append(model.generator(semantics, z)[0])
    return images


@torch.no_grad()
def appearance_mixture(
    model: SmisModel,
    label: torch.Tensor,
    image: torch.Tensor,
    source_label: torch.Tensor,
    source_image: torch.Tensor,
    class_id: int,
) -> list[torch.Tensor]:
    """Take class ``class_id``'s style from a source image, the other classes' from ``image``.

    Returns:
        ``[reconstruction of image, source reconstruction, mixture]``, each (3, H, W).
    """
    semantics, source = _semantics(model, label), _semantics(model, source_label)
    z, _ = model.encoder(image, semantics)
    z_source, _ = model.encoder(source_image, source)
    mixed = z.clone()
    mixed[:, class_id] = z_source[:, class_id]
    return [
        model.generator(semantics, z)[0],
        model.generator(source, z_source)[0],
        model.generator(semantics, mixed)[0],
    ]


@torch.no_grad()
def manipulate(
    model: SmisModel, label: torch.Tensor, image: torch.Tensor, edited_label: torch.Tensor
) -> list[torch.Tensor]:
    """Synthesise the image's style on the original and on an edited label map.

    Returns:
        ``[on the original map, on the edited map]``, each (3, H, W).
    """
    semantics = _semantics(model, label)
    z, _ = model.encoder(image, semantics)
    return [
        model.generator(semantics, z)[0],
        model.generator(_semantics(model, edited_label), z)[0],
    ]


@torch.no_grad()
def morph(
    model: SmisModel,
    label: torch.Tensor,
    image_a: torch.Tensor,
    image_b: torch.Tensor,
    class_id: int,
    steps: int,
) -> list[torch.Tensor]:
    """Interpolate class ``class_id``'s code from image a's to image b's (same label map).

    Returns:
        ``steps`` images (3, H, W), the first with a's code, the last with b's.
    """
    semantics = _semantics(model, label)
    z_a, _ = model.encoder(image_a, semantics)
    z_b, _ = model.encoder(image_b, semantics)
    images = []
    for t in torch.linspace(0, 1, steps).tolist():
        z = z_a.clone()
        z[:, class_id] = (1 - t) * z_a[:, class_id] + t * z_b[:, class_id]
        images.append(model.generator(semantics, z)[0])
    return images


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    return array.permute(1, 2, 0).numpy()


def write_row(
    path: Path, label: torch.Tensor, images: list[torch.Tensor], num_classes: int
) -> Path:
    """Write one PNG row: the coloured label map, then the images.

    Args:
        path: Output PNG.
        label: (1, 1, H, W) class ids.
        images: (3, H, W) images in [-1, 1].
        num_classes: For the palette.
    """
    ids = label[0, 0].long().cpu().numpy().clip(0, num_classes - 1)
    tiles = [palette(num_classes)[ids]] + [_to_uint8(im) for im in images]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path)
    return path


def describe(path: Path, mode: str, class_id: int) -> str:
    """A JSON line describing a written grid (what the CLI prints)."""
    return json.dumps({"grid": str(path), "mode": mode, "class": class_id})
