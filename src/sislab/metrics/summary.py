"""Model summaries: parameter counts per network and sub-network, and the generator's GFLOPs."""

from __future__ import annotations

import logging

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sislab.errors import SpecError
from sislab.models.geometry import DatasetGeometry
from sislab.models.registry import get_method

logger = logging.getLogger(__name__)


class ModelSummary(BaseModel):
    """Sizes and cost of one method's networks on one dataset geometry."""

    model_config = ConfigDict(frozen=True)

    method: str = Field(description="Registered method name.")
    generator_params: int = Field(description="Trainable parameters of the generator.")
    discriminator_params: int = Field(description="Trainable parameters of the discriminator.")
    encoder_params: int = Field(0, description="Trainable parameters of the encoder (0: none).")
    generator_gflops: float = Field(
        description="Generator cost in G multiply-accumulates of conv/linear layers for one "
        "image at the dataset resolution (the papers' 'FLOPs'; see summarize)."
    )
    discriminator_gflops: float = Field(
        description="Discriminator cost for one image, same convention as generator_gflops."
    )
    breakdown: dict[str, int] = Field(
        description="Parameters per top-level sub-network, keyed 'generator.head_0', "
        "'discriminator.discriminators.0', 'encoder.fc_mu', ..."
    )


def _count(module: nn.Module | None) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _breakdown(prefix: str, module: nn.Module | None) -> dict[str, int]:
    if module is None:
        return {}
    out: dict[str, int] = {}
    for name, child in module.named_children():
        if isinstance(child, nn.ModuleList):
            out.update({f"{prefix}.{name}.{i}": _count(c) for i, c in enumerate(child)})
        else:
            out[f"{prefix}.{name}"] = _count(child)
    return {k: v for k, v in out.items() if v}


def _gmacs(module: nn.Module, *inputs: torch.Tensor) -> float:
    """Multiply-accumulates (x 1e-9) of one forward, from torch's FLOP counter (2 per MAC)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*inputs)
    return counter.get_total_flops() / 2 / 1e9


def summarize(
    method_name: str, model_config: BaseModel | None, geometry: DatasetGeometry
) -> ModelSummary:
    """Build a method's networks on the meta device and report their sizes and cost.

    Runs anywhere (no memory is allocated: the networks live on torch's ``meta`` device).

    FLOPs convention: ``generator_gflops`` is the number of multiply-accumulates of the conv and
    linear layers (``FlopCounterMode`` total / 2) for a batch of one at the dataset resolution,
    the generator in eval mode, the VAE encoder not included. This is the convention of the
    papers' tables up to small terms: for SPADE it gives 281.28 / 181.15 / 191.14 G on
    Cityscapes / ADE20K / COCO-Stuff against VASIS Table 3's 281.64 / 181.33 / 191.32. The
    remaining 0.36 / 0.18 / 0.18 G is exactly what a ptflops-style counter adds on top: one op
    per conv bias add, per element of ``nn.ReLU`` modules (SPADE's MLP) and per output element of
    ``nn.Upsample`` modules, while SPADE's SynchronizedBatchNorm (an unknown module type to such
    counters), ``F.leaky_relu`` and ``F.interpolate`` count nothing. The discriminator's
    10.47 / 7.83 G (VASIS: 10.48 / 7.83) differs the same way (bias, LeakyReLU, InstanceNorm).

    Args:
        method_name: A registered method (``sislab.models.registry.METHODS``).
        model_config: That method's config; None uses its defaults.
        geometry: Label channels and output size of the dataset.

    Returns:
        The summary.

    Raises:
        SpecError: Unknown method, or a config of another method.
    """
    method = get_method(method_name)
    config = method.config() if model_config is None else model_config
    if not isinstance(config, method.config):
        raise SpecError(
            f"model config of type {type(config).__name__} given for method {method_name!r}",
            fix=f"pass a {method.config.__name__} (or None for its defaults)",
        )
    with torch.device("meta"):
        generator = method.build_generator(config, geometry).eval()
        discriminator = method.build_discriminator(config, geometry).eval()
        encoder = method.build_encoder(config, geometry)
        semantics = torch.zeros(1, geometry.semantic_nc, geometry.height, geometry.width)
        image = torch.zeros(1, 3, geometry.height, geometry.width)
    generator_gmacs = _gmacs(generator, semantics)
    discriminator_gmacs = _gmacs(discriminator, semantics, image)
    breakdown = {
        **_breakdown("generator", generator),
        **_breakdown("discriminator", discriminator),
        **_breakdown("encoder", encoder),
    }
    summary = ModelSummary(
        method=method_name,
        generator_params=_count(generator),
        discriminator_params=_count(discriminator),
        encoder_params=_count(encoder),
        generator_gflops=generator_gmacs,
        discriminator_gflops=discriminator_gmacs,
        breakdown=breakdown,
    )
    logger.debug("model summary of %s: %s", method_name, summary)
    return summary
