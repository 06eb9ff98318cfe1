"""``train.micro_batch_size: auto``: the largest micro-batch that fits a worker's memory.

Runs in each Train worker before its procedure is built. Every try builds the trial's procedure
alone on the worker's device (one rank, no DDP: no collective can hang on a failed try) and runs
``PROBE_STEPS`` real training steps on synthetic batches of the candidate size; the peak is the
CUDA allocator's (``max_memory_allocated``, an out-of-memory error counts as too large) or the
process's peak resident set size on CPU (reset before each try through /proc/self/clear_refs).
The candidates are the divisors of the worker's batch, so that the micro-batches split it
evenly; a binary search over them keeps the tries to about log2 of their number.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from sislab.errors import TrainingError
from sislab.models.geometry import DatasetGeometry

logger = logging.getLogger(__name__)

# The second step also holds Adam's moments (allocated by the first optimiser step): its peak is
# the steady state's.
PROBE_STEPS = 2
# Fraction of the GPU's memory a micro-batch may take: the rest is for the allocator's
# fragmentation, cuDNN workspaces, evaluation networks and DDP's gradient buckets.
CUDA_MARGIN = 0.9
# Fraction of resources.memory_per_worker_mb: the data pipeline and evaluation also need some.
CPU_MARGIN = 0.9


@dataclass(frozen=True)
class ProbeResult:
    """The probe's choice and what it measured.

    Attributes:
        micro_batch_size: Images per forward/backward pass.
        accumulation: Micro-batches per optimiser step (worker batch / micro_batch_size).
        peak_mb: Measured peak of the chosen micro-batch.
        budget_mb: The limit it had to stay under.
        kind: What was measured ("cuda max_memory_allocated" or "process peak RSS").
        tried: Peak MB of every micro-batch tried (None: out of memory).
    """

    micro_batch_size: int
    accumulation: int
    peak_mb: float
    budget_mb: float
    kind: str
    tried: dict[int, float | None] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """The MLflow params ``probe.*`` of the trial's run."""
        return {
            "probe.micro_batch_size": str(self.micro_batch_size),
            "probe.grad_accumulation": str(self.accumulation),
            "probe.peak_memory_mb": f"{self.peak_mb:.0f}",
            "probe.budget_mb": f"{self.budget_mb:.0f}",
            "probe.memory_kind": self.kind,
        }


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: the CUDA allocator's statistics, or the process's RSS high-water mark
    (Linux; elsewhere the peak keeps covering the whole process lifetime)."""
    gc.collect()  # garbage of earlier work would otherwise count in the new peak
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # hand freed heap back to the OS before the new peak
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # "5": reset the peak RSS (proc(5)); ru_maxrss follows it
    except OSError:
        logger.warning("cannot reset the peak RSS (no /proc/self/clear_refs): peaks are lifetime")


def peak_memory_mb(device: torch.device) -> float:
    """Peak since ``reset_peak_memory``: CUDA max allocated, or the process's peak RSS."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_kind(device: torch.device) -> str:
    """What ``peak_memory_mb`` measures on ``device``."""
    return "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS"


def synthetic_batch(geometry: DatasetGeometry, rows: int, device: torch.device) -> dict:
    """A batch of ``rows`` random layouts (8x8-pixel class cells) and images in the batch
    contract's shapes and dtypes."""
    generator = torch.Generator().manual_seed(0)
    cells = torch.randint(
        0, geometry.num_classes,
        (rows, 1, max(geometry.height // 8, 1), max(geometry.width // 8, 1)), generator=generator,
    )  # fmt: skip
    label = torch.nn.functional.interpolate(
        cells.float(), size=(geometry.height, geometry.width), mode="nearest"
    ).long()
    image = torch.rand(rows, 3, geometry.height, geometry.width, generator=generator) * 2 - 1
    batch = {"label": label, "image": image}
    if geometry.use_instance:
        batch["instance"] = label.clone()
    return {k: v.to(device) for k, v in batch.items()}


def step_peak_mb(
    build: Callable[[], object], geometry: DatasetGeometry, rows: int, device: torch.device
) -> float | None:
    """Peak memory of ``PROBE_STEPS`` training steps on ``rows`` images (None: out of memory).

    Args:
        build: Builds a fresh procedure on ``device`` (one rank, no DDP).
        geometry: Label channels and resolution of the batches.
        rows: Images per step.
        device: Where the procedure runs.
    """
    procedure = None
    reset_peak_memory(device)
    try:
        procedure = build()
        batch = synthetic_batch(geometry, rows, device)
        for _ in range(PROBE_STEPS):
            procedure.train_step(batch)
        return peak_memory_mb(device)
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        del procedure
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def probe_micro_batch(
    build: Callable[[], object],
    geometry: DatasetGeometry,
    worker_batch: int,
    device: torch.device,
    budget_mb: float,
) -> ProbeResult:
    """The largest divisor of ``worker_batch`` whose training steps peak under ``budget_mb``.

    Raises:
        TrainingError: Even a micro-batch of 1 does not fit.
    """
    candidates = [m for m in range(1, worker_batch + 1) if worker_batch % m == 0]
    tried: dict[int, float | None] = {}
    low, high, best = 0, len(candidates) - 1, None
    while low <= high:
        middle = (low + high) // 2
        size = candidates[middle]
        peak = step_peak_mb(build, geometry, size, device)
        tried[size] = peak
        logger.info("batch probe: micro-batch %d peaks at %s MB (budget %.0f MB)", size,
                    "OOM" if peak is None else f"{peak:.0f}", budget_mb)  # fmt: skip
        if peak is not None and peak <= budget_mb:
            best, low = size, middle + 1
        else:
            high = middle - 1
    reset_peak_memory(device)  # the trial's own peak starts now
    kind = memory_kind(device)
    if best is None:
        needed = tried.get(1)
        raise TrainingError(
            f"train.micro_batch_size auto: even one image per step needs "
            f"{'more than the device has' if needed is None else f'{needed:.0f} MB'} "
            f"({kind}), over the budget of {budget_mb:.0f} MB",
            fix="lower dataset.image_size, use precision bf16/fp16, a smaller model, or raise "
            "resources.memory_per_worker_mb (CPU) / use a larger GPU",
        )
    return ProbeResult(best, worker_batch // best, tried[best], budget_mb, kind, tried)


def device_budget_mb(
    device: torch.device, memory_per_worker_mb: float | None, gpus_per_worker: float = 1.0
) -> float:
    """What a micro-batch may use: ``CUDA_MARGIN`` of the worker's share of the GPU
    (``resources.gpus_per_worker`` below 1: workers share it), or ``CPU_MARGIN`` of the
    worker's ``resources.memory_per_worker_mb``."""
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory / 2**20
        return total * min(gpus_per_worker, 1.0) * CUDA_MARGIN
    if memory_per_worker_mb is None:
        raise TrainingError(
            "train.micro_batch_size auto on a CPU worker needs resources.memory_per_worker_mb",
            fix="set resources.memory_per_worker_mb or give train.micro_batch_size a number",
        )
    return memory_per_worker_mb * CPU_MARGIN


def probe_for_spec(spec, geometry: DatasetGeometry, device: torch.device) -> ProbeResult:
    """Run the probe for a trial's spec on this worker's device (``micro_batch_size: auto``).

    Args:
        spec: The trial's ``Spec``.
        geometry: Its dataset geometry.
        device: This worker's device.
    """
    from sislab.trainers import build

    def procedure():
        built, _ = build.build_procedure(spec, geometry, device, 1, lambda m: m.to(device))
        return built

    resources = spec.resources
    budget = device_budget_mb(device, resources.memory_per_worker_mb, resources.gpus_per_worker)
    return probe_micro_batch(procedure, geometry, build.per_worker_batch(spec), device, budget)


def agree_over_ranks(result: ProbeResult, device: torch.device) -> ProbeResult:
    """The smallest micro-batch any rank chose, on every rank (all must accumulate alike)."""
    import dataclasses

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return result
    size = torch.tensor([result.micro_batch_size], device=device)
    dist.all_reduce(size, op=dist.ReduceOp.MIN)
    smallest = int(size.item())
    if smallest == result.micro_batch_size:
        return result
    worker_batch = result.micro_batch_size * result.accumulation
    peak = result.tried.get(smallest) or result.peak_mb
    return dataclasses.replace(
        result, micro_batch_size=smallest, accumulation=worker_batch // smallest, peak_mb=peak
    )
