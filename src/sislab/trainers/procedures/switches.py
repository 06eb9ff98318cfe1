"""Speed switches of a training run (``train.channels_last``, ``train.unfolded_convs``,
``train.compile``, cuDNN autotuning).

None of them changes the maths: channels_last only changes the memory layout of 4-D weights and
inputs, unfolded convs compute some CPU convolutions as one matrix product, ``torch.compile``
fuses the same operations, and cuDNN's benchmark mode only picks the fastest algorithm for each
convolution shape (the shapes of a training run never change).
"""

from __future__ import annotations

import torch
from torch import nn

from sislab.host_allocator import allocator_in_use
from sislab.huge_pages import huge_pages_in_effect, huge_pages_note
from sislab.models.convs.unfolded_conv import use_unfolded_convs
from sislab.models.layout import as_channels_last
from sislab.models.norms.channels_last_instance_norm import use_channels_last_instance_norms
from sislab.spec.models import TrainSpec


def configure_backends(device: torch.device, train: TrainSpec) -> None:
    """Let cuDNN time its convolution algorithms once per shape and keep the fastest (CUDA only),
    and apply ``train.reuse_host_memory`` (resolved by :func:`reuses_host_memory`).

    Args:
        device: The device the procedure trains on.
        train: The spec's ``train:`` section.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if reuses_host_memory(train):
        keep_freed_host_memory()


def reuses_host_memory(train: TrainSpec) -> bool:
    """``train.reuse_host_memory`` resolved for this process: ``auto`` tells glibc's malloc to
    keep freed memory only where it is the process's allocator (tcmalloc keeps it by itself,
    ``sislab.host_allocator``) and torch's huge pages are not in effect (``sislab.huge_pages``).
    With them, a freed buffer handed back to the kernel faults in again 2 MB at a time, without
    the heap's fragmentation (SPADE 256x512: 3.9-4.0 against 4.4-4.8 GB peak RSS). As fast as
    kept memory on an Intel Xeon VM; on an AMD EPYC VM and on an Intel Xeon VM with AMX the
    faults made SPADE's 256x512 step ~30% slower (docs/benchmarks.md), which is why ``true``
    stays a choice."""
    if train.reuse_host_memory == "auto":
        return allocator_in_use() == "glibc" and not huge_pages_in_effect()
    return train.reuse_host_memory


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_host_memory() -> bool:
    """Keep memory this process frees for its own later allocations (glibc's malloc only).

    By default glibc serves each block of 128 kB-32 MB and more with its own mmap and trims the
    heap's top, handing freed memory back to the kernel, so a training step's buffers are
    page-faulted in (zero-filled) again at every step. Without mmap'd blocks and with trimming
    off, a freed block is reused as it is. In one A/B (SPADE 64x128, fp32, 2-core CPU) the minor
    faults of a 4-iteration ``bench train`` fell from 2.3-2.7 to 0.6-0.7 million and the step
    from 2.0-2.1 to 1.6-1.8 s; the peak RSS grew by 8-17% (what the heap cannot reuse). Torch's
    largest tensors still fault in again (some of its allocations do not reach glibc's heap).
    Process-wide and for the rest of the process (a Train worker runs one trial).

    Returns:
        Whether the setting took (False where the C library is not glibc).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**30))


def switch_notes(train: TrainSpec) -> dict[str, str]:
    """The run's speed switches as a tag (``sislab.speed_switches``), next to its params; the
    huge-page note is this process's (``sislab.huge_pages``: set when it started).

    ``torch.compile`` compiles lazily on the first iterations: a trial's first logged
    ``train/images_per_s`` window holds that one-off cost (``sislab bench train --compile``
    reports it apart as ``compile_s``).
    """
    return {
        "sislab.speed_switches": f"precision={train.precision} "
        f"channels_last={train.channels_last} unfolded_convs={train.unfolded_convs} "
        f"compile={train.compile} "
        f"host_allocator={allocator_in_use()} "
        f"reuse_host_memory={reuses_host_memory(train)} huge_pages={huge_pages_note()}"
    }


def to_channels_last(module: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer of ``module`` channels-last (NHWC), in place.

    5-D tensors, SC-GAN's stacked candidate kernels ``(n, out, in, kh, kw)``, are stored as
    ``(n, out, kh, kw, in)`` in memory (``Module.to(memory_format=...)`` refuses 5-D tensors):
    their reshape to the ``(n * out, in, kh, kw)`` kernel of each convolution is then a
    channels-last view, where a contiguous stack made the convolution copy it at every call.
    Instance norms normalise NHWC activations in their layout
    (:mod:`sislab.models.norms.channels_last_instance_norm`).

    Args:
        module: The network to convert.

    Returns:
        ``module``.
    """
    for sub in module.modules():
        for tensors in (sub._parameters, sub._buffers):
            for tensor in tensors.values():
                if tensor is not None and tensor.dim() in (4, 5):
                    tensor.data = as_channels_last(tensor.data)
    use_channels_last_instance_norms(module)
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
    """Apply ``train.channels_last``, ``train.unfolded_convs`` and (when ``compile_it``)
    ``train.compile`` to ``module``.

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
    if train.unfolded_convs:
        use_unfolded_convs(module)
    if train.compile and compile_it:
        module.compile()
    return module
