"""Preflight of a sweep's networks: every distinct model configuration built on the ``meta``
device and run through the forwards of a training step and of the model summary, shape only.

A failure names the method, what failed and, for a size the architecture cannot take, the smallest
larger size at the same aspect ratio that works (found by building at that size, not by reading
torch's message) and any ``num_upsampling_layers`` that works at the spec's size. Runs on the
machine that typed the command; no memory, no weights, no Ray.
"""

from __future__ import annotations

import contextlib
import logging
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from unittest import mock

import torch
from pydantic import BaseModel
from torch.nn.utils import parametrizations

from sislab.errors import SislabError
from sislab.models.convs.grouped_spectral_norm import GroupedSpectralNorm
from sislab.models.geometry import DatasetGeometry
from sislab.models.registry import get_method

logger = logging.getLogger(__name__)

# Sizes tried above a failing one, as multiples of it (same aspect ratio): enough to name the next
# size that works without building more than a handful of networks.
SIZE_STEPS = ((3, 2), (2, 1), (3, 1), (4, 1), (6, 1), (8, 1))
# The one architecture field that trades resolution for depth in several methods; other values
# are tried at the spec's size when it fails.
UPSAMPLING_FIELD = "num_upsampling_layers"


@dataclass(frozen=True)
class ModelCheck:
    """One distinct network configuration of a sweep.

    Args:
        method: Registered method name.
        config: The method's ``model:`` section.
        geometry: Label channels and training resolution.
        batch: Samples each batch-norm statistic is computed over in a training step: the
            per-worker batch, times the workers when batch statistics are synchronised.
    """

    method: str
    config: BaseModel
    geometry: DatasetGeometry
    batch: int

    def key(self) -> tuple:
        """What makes two checks the same (a sweep over learning rates has one)."""
        return (self.method, self.config.model_dump_json(), self.geometry, self.batch)


@dataclass(frozen=True)
class ShapeFailure:
    """What failed: the step (e.g. ``encoder forward``) and its error's message."""

    step: str
    message: str
    is_spec_error: bool = False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def _without_power_iterations() -> Iterator[None]:
    """Skip spectral norm's power iterations: they refine the values of the u/v vectors, which
    meta tensors do not have, and are three quarters of the time a meta build takes (15
    iterations per conv at construction, each op dispatched through torch's meta decompositions).
    Shapes are unchanged."""
    with (
        mock.patch.object(parametrizations._SpectralNorm, "_power_method", _skip_iterations),
        mock.patch.object(GroupedSpectralNorm, "_power_iteration", _skip_iterations),
    ):
        yield


def _skip_iterations(self, matrix: torch.Tensor, num_iterations: int) -> None:
    del self, matrix, num_iterations


def _forward(check: ModelCheck, batch: int, train: bool, nets, step: list[str]) -> None:
    generator, discriminator, encoder = nets
    geometry = check.geometry
    size = (geometry.height, geometry.width)
    semantics = torch.zeros(batch, geometry.semantic_nc, *size)
    image = torch.zeros(batch, 3, *size)
    mode = "training step" if train else "model summary (eval)"
    for net in nets:
        if net is not None:
            net.train(train)
    z = None
    if encoder is not None and train:
        step[0] = f"encoder forward of the {mode}"
        # GroupDNet's encoder reads the image with its label map; SPADE's the image only.
        if get_method(check.method).procedure == "groupdnet":
            z, _ = encoder(image, semantics)
        else:
            z, _ = encoder(image)
    step[0] = f"generator forward of the {mode}"
    output = generator(semantics, z)
    fake = getattr(output, "image", output)  # SC-GAN's generator returns a named tuple
    step[0] = f"discriminator forward of the {mode}"
    if getattr(discriminator, "conditional", True):  # OASIS's U-Net D reads the image only
        discriminator(torch.cat([semantics, semantics]), torch.cat([fake, image]))
    else:
        discriminator(torch.cat([fake, image]))


def shape_failure(check: ModelCheck) -> ShapeFailure | None:
    """Build the check's networks on the meta device and run them; the first failure, or None.

    Runs the training step's forwards (encoder, generator, discriminator on fake and real, in
    training mode at ``check.batch``) and the model summary's and sampling's (eval mode, batch 1).
    An operator without a meta implementation ends the check without a failure (logged).
    """
    method = get_method(check.method)
    step = ["generator build"]
    try:
        with torch.device("meta"), torch.no_grad(), _without_power_iterations():
            generator = method.build_generator(check.config, check.geometry)
            step[0] = "discriminator build"
            discriminator = method.build_discriminator(check.config, check.geometry)
            step[0] = "encoder build"
            encoder = method.build_encoder(check.config, check.geometry)
            if encoder is not None and hasattr(encoder, "use_crop"):
                # GroupDNet's per-class crop is data-dependent and keeps the shape: skipped here.
                encoder.use_crop = False
            nets = (generator, discriminator, encoder)
            _forward(check, check.batch, True, nets, step)
            _forward(check, 1, False, nets, step)
    except NotImplementedError as exc:
        logger.debug("preflight of %s stopped at the %s: %s", check.method, step[0], exc)
        return None
    except SislabError as exc:
        return ShapeFailure(step[0], str(exc).replace("\n  Fix: ", "; fix: "), is_spec_error=True)
    except Exception as exc:  # whatever fails here fails the trial at start: report it
        prefix = "" if isinstance(exc, RuntimeError | ValueError) else f"{type(exc).__name__}: "
        return ShapeFailure(step[0], prefix + _one_line(exc))
    return None


def _at_size(check: ModelCheck, height: int, width: int) -> ModelCheck:
    geometry = DatasetGeometry(
        check.geometry.num_classes,
        check.geometry.use_instance,
        height,
        width,
        check.geometry.upsampling,
        check.geometry.name,
    )
    return ModelCheck(check.method, check.config, geometry, check.batch)


def smallest_working_size(check: ModelCheck) -> tuple[tuple[int, int] | None, list[str]]:
    """The first larger size (same aspect ratio, ``SIZE_STEPS``) at which the check passes.

    Returns:
        That ``(height, width)`` or None, and the sizes tried that failed (``HxW``).
    """
    height, width = check.geometry.height, check.geometry.width
    failed: list[str] = []
    for num, den in SIZE_STEPS:
        if (height * num) % den or (width * num) % den:
            continue
        size = (height * num // den, width * num // den)
        if shape_failure(_at_size(check, *size)) is None:
            return size, failed
        failed.append(f"{size[0]}x{size[1]}")
    return None, failed


def working_upsampling(check: ModelCheck) -> list[str]:
    """Other ``num_upsampling_layers`` values with which the check passes at its size."""
    field = type(check.config).model_fields.get(UPSAMPLING_FIELD)
    if field is None:
        return []
    current = getattr(check.config, UPSAMPLING_FIELD)
    values = [
        v for arg in typing.get_args(field.annotation) for v in (typing.get_args(arg) or [arg])
    ]
    out = []
    for value in values:
        if not isinstance(value, str) or value == current:
            continue
        config = check.config.model_copy(update={UPSAMPLING_FIELD: value})
        if shape_failure(ModelCheck(check.method, config, check.geometry, check.batch)) is None:
            out.append(value)
    return out


def failure_message(check: ModelCheck, failure: ShapeFailure) -> str:
    """The problem text of a failed check: what fails, the size that works, the fix."""
    h, w = check.geometry.height, check.geometry.width
    upsampling = getattr(check.config, UPSAMPLING_FIELD, None)
    at = f" at {UPSAMPLING_FIELD} {upsampling}" if upsampling else ""
    size, failed = smallest_working_size(check)
    alternatives = working_upsampling(check)
    fixes = []
    if size is not None:
        fixes.append(f"raise dataset.image_size to [{size[0]}, {size[1]}]")
    if alternatives:
        fixes.append(f"set model.{UPSAMPLING_FIELD}: {' or '.join(alternatives)}")
    if size is not None:
        tried = f"; {', '.join(failed)} fail{'s' if len(failed) == 1 else ''} too" if failed else ""
        head = f"{check.method} needs image_size >= {size[0]}x{size[1]}{at}{tried}"
    else:
        head = f"{check.method} cannot be built or run at image_size {h}x{w}{at}"
    detail = f"at {h}x{w} the {failure.step} fails: {failure.message}"
    if failure.is_spec_error and size is None and not alternatives:
        return f"{check.method}: {failure.message}"
    if not fixes:
        return f"{head} ({detail})"
    return f"{head} ({detail}). Fix: {' or '.join(fixes)}"
