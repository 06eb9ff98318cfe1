"""Model summaries: parameter counts per network and sub-network, the generator's GFLOPs and,
on request, its inference speed."""

from __future__ import annotations

import logging
import math
import time

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sislab.errors import SpecError
from sislab.models.geometry import DatasetGeometry
from sislab.models.registry import Method, get_method

logger = logging.getLogger(__name__)


class InferenceSpeed(BaseModel):
    """Generator inference throughput (the 'FPS' of GroupDNet Table 1)."""

    model_config = ConfigDict(frozen=True)

    images_per_s: float = Field(description="Generated images per second.")
    device: str = Field(description="Device the generator ran on, e.g. 'cuda (NVIDIA H100)'.")
    batch_size: int = Field(description="Images per forward.")
    warmup: int = Field(description="Untimed forwards before timing.")
    iterations: int = Field(description="Timed forwards.")


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
    generator_gflops_table: float = Field(
        description="generator_gflops plus the element-wise terms a ptflops-style counter adds "
        "(bias adds, ReLU/LeakyReLU/Upsample modules, InstanceNorm): the convention of VASIS "
        "Table 3."
    )
    discriminator_gflops_table: float = Field(
        description="discriminator_gflops in the convention of generator_gflops_table."
    )
    breakdown: dict[str, int] = Field(
        description="Parameters per top-level sub-network, keyed 'generator.head_0', "
        "'discriminator.discriminators.0', 'encoder.fc_mu', ..."
    )
    speed: InferenceSpeed | None = Field(
        None, description="Generator inference speed, when measured (inference_speed)."
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


def _gmacs(module: nn.Module, *inputs: torch.Tensor) -> tuple[float, float]:
    """G multiply-accumulates of one forward, without and with the element-wise table terms.

    MACs come from torch's FLOP counter (2 FLOPs per MAC). The table terms emulate the module-hook
    counter behind the papers' tables (ptflops): one op per conv/linear bias add, per output element
    of ``nn.ReLU``/``nn.LeakyReLU``/``nn.Upsample`` and per input element of ``nn.InstanceNorm2d``
    (twice if affine). BatchNorm counts nothing: SPADE's SynchronizedBatchNorm is a type such
    counters do not know. Functional calls (``F.leaky_relu``, ``F.interpolate``) count nothing.
    """
    extra = [0]

    def hook(m: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        has_bias = isinstance(m, nn.Conv2d | nn.Linear) and m.bias is not None
        if has_bias or isinstance(m, nn.ReLU | nn.LeakyReLU | nn.Upsample):
            extra[0] += out.numel()
        elif isinstance(m, nn.InstanceNorm2d):
            extra[0] += args[0].numel() * (2 if m.affine else 1)

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    macs = counter.get_total_flops() / 2
    return macs / 1e9, (macs + extra[0]) / 1e9


def _method_and_config(name: str, model_config: BaseModel | None) -> tuple[Method, BaseModel]:
    method = get_method(name)
    config = method.config() if model_config is None else model_config
    if not isinstance(config, method.config):
        raise SpecError(
            f"model config of type {type(config).__name__} given for method {name!r}",
            fix=f"pass a {method.config.__name__} (or None for its defaults)",
        )
    return method, config


def summarize(
    method_name: str, model_config: BaseModel | None, geometry: DatasetGeometry
) -> ModelSummary:
    """Build a method's networks on the meta device and report their sizes and cost.

    Runs anywhere (no memory is allocated: the networks live on torch's ``meta`` device).

    FLOPs convention: ``generator_gflops`` counts multiply-accumulates (not 2 x MACs) of the conv
    and linear layers (``FlopCounterMode`` total / 2) for a batch of one at the dataset
    resolution, generator in eval mode, VAE encoder excluded. For SPADE this gives 281.28 /
    181.15 / 191.14 G on Cityscapes / ADE20K / COCO-Stuff, against VASIS Table 3's 281.64 /
    181.33 / 191.32. The table's convention is that of ptflops on SPADE's code: MACs plus one op
    per bias add, per element out of ``nn.ReLU``/``nn.LeakyReLU``/``nn.Upsample`` modules and per
    element into ``nn.InstanceNorm2d``, with SPADE's SynchronizedBatchNorm (unknown to the
    counter), ``F.leaky_relu`` and ``F.interpolate`` counting nothing. ``*_gflops_table`` adds
    those terms and reproduces the table to its last digit: G 281.64 / 181.33 / 191.32 and
    D 10.48 / 7.83 (VASIS: 10.48 / 7.83; D MACs alone 10.47 / 7.83 / 8.53). The terms depend on
    which ops a model writes as modules, so compare ``*_gflops_table`` only with tables made the
    same way, and prefer ``*_gflops`` between sislab models.

    Args:
        method_name: A registered method (``sislab.models.registry.METHODS``).
        model_config: That method's config; None uses its defaults.
        geometry: Label channels and output size of the dataset.

    Returns:
        The summary.

    Raises:
        SpecError: Unknown method, or a config of another method.
    """
    method, config = _method_and_config(method_name, model_config)
    with torch.device("meta"):
        generator = method.build_generator(config, geometry).eval()
        discriminator = method.build_discriminator(config, geometry).eval()
        encoder = method.build_encoder(config, geometry)
        semantics = torch.zeros(1, geometry.semantic_nc, geometry.height, geometry.width)
        image = torch.zeros(1, 3, geometry.height, geometry.width)
    generator_gmacs, generator_table = _gmacs(generator, semantics)
    # A D with ``conditional = False`` (OASIS's U-Net) reads the image only.
    d_inputs = (semantics, image) if getattr(discriminator, "conditional", True) else (image,)
    discriminator_gmacs, discriminator_table = _gmacs(discriminator, *d_inputs)
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
        generator_gflops_table=generator_table,
        discriminator_gflops_table=discriminator_table,
        breakdown=breakdown,
    )
    logger.debug("model summary of %s: %s", method_name, summary)
    return summary


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_speed(
    method_name: str,
    model_config: BaseModel | None,
    geometry: DatasetGeometry,
    device: torch.device | str | None = None,
    batch_size: int = 1,
    warmup: int = 3,
    iterations: int = 10,
) -> InferenceSpeed:
    """Time the generator's forward alone, as GroupDNet's FPS: eval mode, no gradients.

    The weights are freshly initialised (speed does not depend on their values) and the input is
    a random one-hot label map; VAE generators sample their latent inside the forward, as at test
    time. Warm-up forwards (cuDNN autotuning, allocator growth) are not timed, and on CUDA the
    clock stops only after ``torch.cuda.synchronize``.

    Args:
        method_name: A registered method.
        model_config: That method's config; None uses its defaults.
        geometry: Label channels and output size of the dataset.
        device: Where to run; None: CUDA when available, else CPU.
        batch_size: Images per forward (the papers: 1).
        warmup: Untimed forwards.
        iterations: Timed forwards.

    Raises:
        SpecError: Unknown method, a config of another method, or non-positive counts.
    """
    if batch_size < 1 or iterations < 1 or warmup < 0:
        raise SpecError(
            f"batch {batch_size}, warm-up {warmup}, iterations {iterations}",
            fix="use a batch and iterations of at least 1 and a warm-up of at least 0",
        )
    method, config = _method_and_config(method_name, model_config)
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with torch.device(target):
        generator = method.build_generator(config, geometry).eval()
    labels = torch.randint(
        geometry.num_classes, (batch_size, geometry.height, geometry.width), device=target
    )
    semantics = torch.zeros(
        batch_size, geometry.semantic_nc, geometry.height, geometry.width, device=target
    )
    semantics.scatter_(1, labels.unsqueeze(1), 1.0)
    with torch.no_grad():
        for _ in range(warmup):
            generator(semantics)
        _sync(target)
        started = time.perf_counter()
        for _ in range(iterations):
            generator(semantics)
        _sync(target)
        elapsed = time.perf_counter() - started
    rate = batch_size * iterations / elapsed if elapsed > 0 else math.inf
    speed = InferenceSpeed(
        images_per_s=rate,
        device=_device_name(target),
        batch_size=batch_size,
        warmup=warmup,
        iterations=iterations,
    )
    logger.debug("inference speed of %s: %s", method_name, speed)
    return speed
