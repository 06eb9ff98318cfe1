#!/usr/bin/env python
"""Where the time of sislab's training step goes: torch.profiler's top ops by self CPU time.

    python tools/official-bench/profile_sislab.py --method spade --size 64x128 [--top 12]
        [--model preset=cityscapes] [--no-channels-last] [--precision bf16]

Builds the procedure exactly as ``sislab bench train`` does (same synthetic batch, random VGG19),
runs ``--warmup`` untimed steps, then profiles one step and prints one JSON line: the share of
self CPU time of the top ops and their call counts. Shares, not seconds: on a shared machine
only the relative profile means something.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import yaml
from torch.profiler import ProfilerActivity, profile


def build_step(
    method_name: str,
    dataset: str,
    size: str,
    model: list[str],
    precision: str = "fp32",
    channels_last: bool | None = None,
    train_fields: dict | None = None,
):
    """The procedure, its synthetic batch (batch 1) and the model fields, as ``sislab bench
    train`` builds them (random VGG19, seed 0). ``model``: ``KEY=VALUE`` strings (YAML values);
    ``train_fields``: more ``train:`` fields (they win over ``precision``/``channels_last``).
    Shared with ``saved_tensors.py`` and ``interleaved.py``."""
    height, width = (int(v) for v in size.lower().split("x"))

    from sislab.datasets.presets import preset_geometry
    from sislab.models.geometry import DatasetGeometry
    from sislab.models.registry import get_method
    from sislab.spec.models import TrainSpec
    from sislab.trainers.bench import bench_procedure, synthetic_batch

    base = preset_geometry(dataset)
    geometry = DatasetGeometry(base.num_classes, base.use_instance, height, width, base.upsampling)
    method = get_method(method_name)
    values = {k: yaml.safe_load(v) for k, _, v in (p.partition("=") for p in model)}
    config = method.config(**values)
    fields = {"precision": precision, **(train_fields or {})}
    if channels_last is not None:  # None: the spec's default, as a trial
        fields.setdefault("channels_last", channels_last)
    train = TrainSpec(batch_size=1, **fields)
    cpu = torch.device("cpu")
    procedure = bench_procedure(method, config, geometry, train, cpu)
    return procedure, synthetic_batch(geometry, 1, cpu), values


def step_parser() -> argparse.ArgumentParser:
    """The options ``build_step`` reads: --method, --dataset, --size, --model (repeatable)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", required=True)
    parser.add_argument("--dataset", default="cityscapes")
    parser.add_argument("--size", default="64x128")
    parser.add_argument("--model", action="append", default=[])
    return parser


def main() -> int:
    parser = step_parser()
    # Default: train.channels_last's default (NHWC), as a trial.
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    procedure, batch, values = build_step(
        args.method, args.dataset, args.size, args.model, args.precision, args.channels_last
    )
    for _ in range(args.warmup):
        procedure.train_step(batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        procedure.train_step(batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    out = {
        "method": args.method,
        "size": args.size,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "model": values,
        "top_ops": [
            {"op": e.key, "share": round(e.self_cpu_time_total / total, 4), "calls": e.count}
            for e in top
        ],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
