"""``sislab bench train``: seconds per full training iteration and peak memory of a method.

One iteration is what the trainer runs: the generator step and the discriminator step with all
losses and both optimiser steps, with the procedure and ``train:`` switches a trial of the default
spec uses unless told otherwise. The VGG19 of the perceptual loss is built with random weights
when no real ones are configured: timing does not depend on the weights, and the result says so.
Besides s/iter and peak memory it reports the achieved model FLOP/s (``bench_flops``), the MFU on
GPUs of known peak, and with ``train.compile`` the compilation time, apart from s/iter.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel

from sislab.datasets.presets import preset_geometry
from sislab.host_allocator import allocator_in_use
from sislab.huge_pages import huge_pages_note
from sislab.models.geometry import DatasetGeometry
from sislab.models.losses.perceptual import vgg19_features
from sislab.models.registry import Method, get_method
from sislab.spec.models import LossesSpec, TrainSpec
from sislab.trainers.bench_flops import peak_tflops, train_gflop_per_image
from sislab.trainers.build import PROCEDURES
from sislab.trainers.procedures.base import Procedure, ProcedureRuntime
from sislab.trainers.procedures.switches import reuses_host_memory


@dataclass(frozen=True)
class TrainBench:
    """Result of ``bench_train``."""

    method: str
    dataset: str
    height: int
    width: int
    batch_size: int
    device: str
    precision: str
    median_s: float
    iter_s: list[float]
    peak_memory_mb: float
    memory_kind: str
    vgg_weights: str
    channels_last: bool
    unfolded_convs: bool
    compile: bool
    host_allocator: str
    reuse_host_memory: bool
    huge_pages: str
    model: dict
    model_gflop_per_iter: float
    achieved_tflop_s: float
    mfu: float | None
    peak_tflop_s: float | None
    peak_source: str | None
    compile_s: float | None
    warmup_s: list[float]


def synthetic_batch(geometry: DatasetGeometry, batch_size: int, device: torch.device) -> dict:
    """A fixed batch of blocky synthetic layouts and noise images of ``geometry`` on ``device``."""
    generator = torch.Generator().manual_seed(0)
    # Blocky layouts (8x8 cells) rather than per-pixel noise, closer to real label maps.
    cells = torch.randint(
        0, geometry.num_classes, (batch_size, 1, max(geometry.height // 8, 1),
                                  max(geometry.width // 8, 1)), generator=generator,
    )  # fmt: skip
    label = torch.nn.functional.interpolate(
        cells.float(), size=(geometry.height, geometry.width), mode="nearest"
    ).long()
    batch = {
        "label": label.to(device),
        "image": (torch.rand(batch_size, 3, geometry.height, geometry.width, generator=generator)
                  * 2 - 1).to(device),
    }  # fmt: skip
    if geometry.use_instance:
        batch["instance"] = label.clone().to(device)
    return batch


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(
    method_name: str,
    dataset: str,
    *,
    size: tuple[int, int] | None = None,
    batch_size: int = 1,
    iters: int = 5,
    warmup: int = 2,
    precision: str | None = None,
    channels_last: bool | None = None,
    unfolded_convs: bool | None = None,
    compile: bool | None = None,
    reuse_host_memory: bool | Literal["auto"] | None = None,
    device: str | None = None,
    model_config: BaseModel | None = None,
) -> TrainBench:
    """Time ``iters`` training iterations after ``warmup`` on synthetic batches.

    Args:
        method_name: Registered method.
        dataset: Dataset preset giving label channels and default resolution.
        size: (H, W) overriding the preset's resolution.
        batch_size: Images per iteration.
        iters: Timed iterations (the median is reported).
        warmup: Untimed iterations first (allocator, cuDNN autotuning; at least 1 with compile).
        precision: fp32, bf16 or fp16 (None: ``train.precision``'s default, what a trial runs).
        channels_last: ``train.channels_last`` (None: its default).
        unfolded_convs: ``train.unfolded_convs`` (None: its default).
        compile: ``train.compile`` (None: its default).
        reuse_host_memory: ``train.reuse_host_memory`` (None: its default, ``auto``);
            process-wide, so a process that once ran with it keeps it; reported resolved.
            Torch's huge pages (``sislab.huge_pages``) are what this process's environment
            said when torch started (``sislab bench`` turns them on unless
            ``THP_MEM_ALLOC_ENABLE=0``); reported as ``huge_pages``. The process's malloc
            is reported as ``host_allocator`` (``sislab bench train`` re-executes itself with
            tcmalloc where installed, as a trial's workers run: ``sislab.host_allocator``).
        device: cpu or cuda (default: cuda when available).
        model_config: The method's config (default: its defaults).

    Returns:
        The timings; ``compile_s`` (with compile) is the warm-up time beyond ``warmup`` steady
        iterations, i.e. the one-off cost a trial amortises over its iterations.
    """
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    geometry = bench_geometry(dataset, size)
    method = get_method(method_name)
    config = model_config or method.config()
    switches = {
        "precision": precision,
        "channels_last": channels_last,
        "unfolded_convs": unfolded_convs,
        "compile": compile,
        "reuse_host_memory": reuse_host_memory,
    }
    train = TrainSpec(batch_size=batch_size, **{k: v for k, v in switches.items() if v is not None})
    if train.compile:
        warmup = max(warmup, 1)  # compilation happens on the first iteration: never timed
    procedure = bench_procedure(method, config, geometry, train, target)
    batch = synthetic_batch(geometry, batch_size, target)
    rss_before: list[float] = []
    warmup_s, times = time_iterations(
        procedure, batch, iters, warmup, target,
        on_warm=lambda: (_reset_peak(target), rss_before.append(_rss_mb())),
    )  # fmt: skip
    rss_before = rss_before[0]
    if target.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(target) / 2**20, "cuda max_memory_allocated"
    else:
        peak, kind = max(_rss_mb(), rss_before), "process peak RSS"
    median = statistics.median(times)
    gflop = train_gflop_per_image(method_name, config, geometry) * batch_size
    achieved = gflop / median / 1e3
    device_peak = peak_tflops(target, train.precision)
    compile_s = None
    if train.compile:
        compile_s = max(0.0, sum(warmup_s) - median * len(warmup_s))
    return TrainBench(
        method_name, dataset, geometry.height, geometry.width, batch_size, str(target),
        train.precision, median, times, peak, kind, "random (timing only)",
        train.channels_last, train.unfolded_convs, train.compile, allocator_in_use(),
        reuses_host_memory(train), huge_pages_note(),
        config.model_dump(mode="json"), gflop, achieved,
        None if device_peak is None else achieved / device_peak[0],
        None if device_peak is None else device_peak[0],
        None if device_peak is None else device_peak[1], compile_s, warmup_s,
    )  # fmt: skip


def bench_geometry(dataset: str, size: tuple[int, int] | None) -> DatasetGeometry:
    """The dataset preset's geometry, at ``size`` (H, W) where given."""
    geometry = preset_geometry(dataset)
    if size is None:
        return geometry
    return DatasetGeometry(
        geometry.num_classes, geometry.use_instance, size[0], size[1], geometry.upsampling
    )


def bench_procedure(
    method: Method, config: BaseModel, geometry: DatasetGeometry, train: TrainSpec,
    target: torch.device,
) -> Procedure:  # fmt: skip
    """The procedure ``bench_train`` times: random VGG19 weights, seeded as a trial's (also
    tools/official-bench's profiling scripts).

    Its own function so that the VGG19 state dict is released once the perceptual loss has copied
    it, as ``trainers.build.build_procedure`` releases the loaded file: kept alive beside the
    procedure it added 80 MB to the bench's peak that no trial has.
    """
    vgg_state = vgg19_features().state_dict()
    vgg_state = {f"features.{k}": v for k, v in vgg_state.items()}
    runtime = ProcedureRuntime(target, 1, lambda m: m.to(target), vgg_state)
    torch.manual_seed(0)
    return PROCEDURES[method.procedure](method, config, geometry, train, LossesSpec(), runtime)


def time_iterations(
    procedure, batch: dict, iters: int, warmup: int, device: torch.device, on_warm=None
) -> tuple[list[float], list[float]]:
    """Seconds of ``warmup`` untimed-for-the-median then ``iters`` training iterations on
    ``batch`` (``sislab bench train`` and ``sislab estimate`` share it).

    Args:
        procedure: The training procedure.
        batch: One batch on ``device``.
        iters: Timed iterations.
        warmup: Iterations before them.
        device: Synchronised around each iteration (CUDA).
        on_warm: Called between the warm-up and the timed iterations (e.g. to reset peaks).

    Returns:
        The warm-up iterations' seconds and the timed iterations' seconds.
    """
    warmup_s = [_timed_step(procedure, batch, device) for _ in range(warmup)]
    if on_warm is not None:
        on_warm()
    return warmup_s, [_timed_step(procedure, batch, device) for _ in range(iters)]


def _timed_step(procedure, batch: dict, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    procedure.train_step(batch)
    _sync(device)
    return time.perf_counter() - start


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
