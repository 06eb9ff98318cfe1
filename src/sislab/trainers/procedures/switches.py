"""Speed switches of a training run (``train.channels_last``, ``train.compile``, cuDNN autotuning).

None of them changes the maths: channels_last only changes the memory layout of 4-D weights and
inputs, ``torch.compile`` fuses the same operations, and cuDNN's benchmark mode only picks the
fastest algorithm for each convolution shape (the shapes of a training run never change).
"""

from __future__ import annotations

import torch
from torch import nn

from sislab.spec.models import TrainSpec


def configure_backends(device: torch.device) -> None:
    """Let cuDNN time its convolution algorithms once per shape and keep the fastest (CUDA only).

    Args:
        device: The device the procedure trains on.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def switch_notes(train: TrainSpec) -> dict[str, str]:
    """The run's speed switches as a tag (``sislab.speed_switches``), next to its params.

    ``torch.compile`` compiles lazily on the first iterations: a trial's first logged
    ``train/images_per_s`` window holds that one-off cost (``sislab bench train --compile``
    reports it apart as ``compile_s``).
    """
    return {
        "sislab.speed_switches": f"precision={train.precision} "
        f"channels_last={train.channels_last} compile={train.compile}"
    }


def to_channels_last(module: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer of ``module`` channels-last (NHWC), in place.

    ``Module.to(memory_format=...)`` refuses 5-D tensors, which SC-GAN's stacked candidate
    kernels are; those keep their layout (they are reshaped to 4-D before each convolution).

    Args:
        module: The network to convert.

    Returns:
        ``module``.
    """
    for sub in module.modules():
        for tensors in (sub._parameters, sub._buffers):
            for tensor in tensors.values():
                if tensor is not None and tensor.dim() == 4:
                    tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return module


def channels_last_batch(
    batch: dict[str, torch.Tensor], train: TrainSpec
) -> dict[str, torch.Tensor]:
    """The batch's 4-D tensors channels-last when ``train.channels_last`` is on, else the batch."""
    if not train.channels_last:
        return batch
    return {
        k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
        for k, v in batch.items()
    }


def prepare_module(module: nn.Module, train: TrainSpec, *, compile_it: bool = True) -> nn.Module:
    """Apply ``train.channels_last`` and (when ``compile_it``) ``train.compile`` to ``module``.

    Compilation is in place (``nn.Module.compile``), so parameter names, state dicts and
    checkpoints stay those of the eager module; it happens lazily on the first forward.

    Args:
        module: A network, already on its device and not yet wrapped for DDP.
        train: The spec's ``train:`` section.
        compile_it: False for networks that are only sampled (OASIS's EMA generator).

    Returns:
        ``module``.
    """
    if train.channels_last:
        to_channels_last(module)
    if train.compile and compile_it:
        module.compile()
    return module
