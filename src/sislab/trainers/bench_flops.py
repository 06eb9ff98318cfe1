"""Achieved model FLOP/s of a training iteration and, on known GPUs, its fraction of the peak (MFU).

Model FLOPs follow the usual MFU convention: the forward FLOPs of the networks the method trains
(generator + discriminator for one image, 2 FLOPs per multiply-accumulate of the conv and linear
layers, ``metrics.summary``), times 3 for forward + backward, per image. Work the recipe does on
top (the D step's regenerated fake, D on real images, the VGG19 perceptual loss) is not counted,
so the figure is a lower bound on what the hardware executed, comparable between methods and
switches.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel

from sislab.metrics.summary import summarize
from sislab.models.geometry import DatasetGeometry

# Dense peak TFLOP/s from the vendors' datasheets (no structured sparsity), by precision. fp32
# convolutions run as TF32 on Ampere and later when cuDNN's allow_tf32 is on (torch's default),
# so fp32 is looked up as "tf32" then. Checked in order: the first substring of the device name
# that matches wins (H100 PCIe before H100, L40S before L4).
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H100 PCIe", {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.1, "fp16": 362.1, "tf32": 183.0, "fp32": 91.6}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
)


def train_gflop_per_image(
    method_name: str, model_config: BaseModel | None, geometry: DatasetGeometry
) -> float:
    """Model GFLOP of one training iteration per image: 3 x forward FLOPs of G + D.

    Args:
        method_name: Registered method.
        model_config: Its config (None: defaults).
        geometry: Label channels and resolution.
    """
    summary = summarize(method_name, model_config, geometry)
    forward_gmacs = summary.generator_gflops + summary.discriminator_gflops
    return 3 * 2 * forward_gmacs


def peak_tflops(device: torch.device, precision: str) -> tuple[float, str] | None:
    """The device's dense peak for ``precision`` and the table row used, or None if unknown.

    Args:
        device: Where the benchmark ran (only CUDA devices have a peak here).
        precision: fp32, bf16 or fp16.
    """
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    kind = precision
    if precision == "fp32" and torch.backends.cudnn.allow_tf32:
        kind = "tf32"
    for key, peaks in PEAK_TFLOPS:
        if key in name:
            peak = peaks.get(kind)
            return None if peak is None else (peak, f"{key} {kind}")
    return None
