"""``sislab bench model scgan``: cost of SC-GAN's SRG per candidate count, against Conv+BN.

Times forward+backward of the semantic render generator (SRG) for n = 1, 2, 4, 8 kernel
candidates (paper Tab. 5: SCC + SCN, 4 norm candidates) and for the Conv+BN baseline of Tab. 3
(the preset's n plain kernels over concat(F, V), affine batch norm), all in one process so the
ratios share the machine state. The SVG runs once per configuration outside the timing; its
vectors enter the SRG with ``requires_grad`` so the backward includes the gradient the SVG
would receive in training.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from sislab.datasets.presets import preset_geometry
from sislab.models.geometry import DatasetGeometry
from sislab.models.methods.scgan import ScganConfig, build_generator


@dataclass(frozen=True)
class SrgCost:
    """Median forward+backward seconds and peak memory of one SRG configuration."""

    label: str
    num_candidates: int
    ops: str
    params: int
    median_s: float
    peak_memory_mb: float


@dataclass(frozen=True)
class SrgBench:
    """Result of ``bench_srg``: the baseline and each n, with ratios to the baseline."""

    preset: str
    height: int
    width: int
    batch_size: int
    device: str
    memory_kind: str
    baseline: SrgCost
    candidates: list[SrgCost]

    def ratios(self) -> list[tuple[int, float, float]]:
        """``(n, time ratio, memory ratio)`` of each candidate count to Conv+BN."""
        return [
            (c.num_candidates, c.median_s / self.baseline.median_s,
             c.peak_memory_mb / self.baseline.peak_memory_mb)
            for c in self.candidates
        ]  # fmt: skip


def _saved_bytes() -> tuple[object, dict[int, int]]:
    """Hooks recording each distinct storage autograd saves for backward (the activations)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), storages


def _measure(
    cfg: ScganConfig, geometry: DatasetGeometry, batch: int, iters: int, warmup: int, device
) -> tuple[int, float, float]:
    torch.manual_seed(0)
    generator = build_generator(cfg, geometry).to(device).train()
    srg = generator.srg
    semantics = torch.zeros(batch, geometry.semantic_nc, geometry.height, geometry.width)
    cells = torch.randint(0, geometry.num_classes, (batch, 1, geometry.height // 8,
                                                    geometry.width // 8))  # fmt: skip
    semantics.scatter_(1, torch.nn.functional.interpolate(cells.float(), scale_factor=8).long(), 1)
    semantics = semantics.to(device)
    with torch.no_grad():
        vectors = generator.svg(semantics)
    conv_v = [v.detach().requires_grad_() for v in vectors.conv_vectors]
    norm_v = [v.detach().requires_grad_() for v in vectors.norm_vectors]

    def step() -> None:
        srg.zero_grad(set_to_none=True)
        srg(semantics, conv_v, norm_v).mean().backward()

    for _ in range(warmup):
        step()
    params = sum(p.numel() for p in srg.parameters())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        hooks, storages = _saved_bytes()
        with hooks:
            step()
        # Activations kept for backward + parameters + their gradients.
        peak = (sum(storages.values()) + 2 * 4 * params) / 2**20
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return params, statistics.median(times), peak


def bench_srg(
    num_candidates_list: tuple[int, ...] = (1, 2, 4, 8),
    *,
    preset: str = "cityscapes",
    dataset: str = "cityscapes",
    size: tuple[int, int] = (64, 128),
    batch_size: int = 1,
    iters: int = 5,
    warmup: int = 2,
    device: str | None = None,
) -> SrgBench:
    """Forward+backward time and peak memory of the SRG for each n, and of Conv+BN.

    Args:
        num_candidates_list: SCC candidate counts n to measure (SCN keeps the preset's 4).
        preset: SC-GAN preset giving the widths (cityscapes: ADE20K's ngf = nff = nrf = 32).
        dataset: Dataset preset giving the label channels and upsampling schedule.
        size: (H, W) of the output.
        batch_size: Images per step.
        iters: Timed steps per configuration (median reported).
        warmup: Untimed steps first.
        device: cpu or cuda (default: cuda when available).

    Returns:
        The costs; peak memory on CUDA is ``max_memory_allocated`` above what the model held
        before the step, on CPU the bytes autograd saved for backward plus parameters and
        gradients (fp32).
    """
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    base = preset_geometry(dataset)
    geometry = DatasetGeometry(base.num_classes, base.use_instance, size[0], size[1],
                               base.upsampling)  # fmt: skip
    # Tab. 3 baseline: Conv+BN with the preset's n (3) plain kernels over concat(F, V).
    baseline_cfg = ScganConfig(preset=preset, ops="conv_bn")
    configs = [("conv_bn", baseline_cfg)] + [
        (f"scc_scn n={n}", ScganConfig(preset=preset, num_candidates=n, num_norm_candidates=4))
        for n in num_candidates_list
    ]
    costs = []
    for label, cfg in configs:
        params, median_s, peak = _measure(cfg, geometry, batch_size, iters, warmup, target)
        costs.append(SrgCost(label, cfg.num_candidates, cfg.ops, params, median_s, peak))
    kind = "cuda max_memory_allocated" if target.type == "cuda" else "saved activations + params"
    return SrgBench(preset, size[0], size[1], batch_size, str(target), kind, costs[0], costs[1:])
