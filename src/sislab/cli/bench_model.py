"""``sislab bench model METHOD``: a method's own cost benchmark (SC-GAN's SRG for now)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from sislab.cli.bench import _size
from sislab.errors import SpecError

SUPPORTED = ("scgan",)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``model`` to the bench subcommands."""
    model = sub.add_parser(
        "model", help="SC-GAN SRG forward+backward time and memory per n, vs Conv+BN"
    )
    model.add_argument("method", help=f"method to benchmark ({', '.join(SUPPORTED)})")
    model.add_argument("--size", type=_size, default=(64, 128), help="HxW (default 64x128)")
    model.add_argument("--batch", type=int, default=1)
    model.add_argument("--candidates", type=int, nargs="+", default=[1, 2, 4, 8])
    model.add_argument("--preset", default="cityscapes", help="SC-GAN preset giving the widths")
    model.add_argument("--iters", type=int, default=5)
    model.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    model.add_argument("--json", action="store_true", help="print one JSON object")
    model.set_defaults(handler=_model)


def _model(args: argparse.Namespace) -> int:
    if args.method not in SUPPORTED:
        raise SpecError(
            f"no model benchmark for method {args.method!r}",
            fix=f"supported: {', '.join(SUPPORTED)}; use 'sislab bench train' for any method",
        )
    from sislab.trainers.bench_model import bench_srg

    result = bench_srg(
        tuple(args.candidates), preset=args.preset, size=args.size, batch_size=args.batch,
        iters=args.iters, device=args.device,
    )  # fmt: skip
    if args.json:
        print(json.dumps(asdict(result) | {"ratios": result.ratios()}))
        return 0
    base = result.baseline
    print(f"SC-GAN SRG, preset {result.preset}, {result.height}x{result.width}, batch "
          f"{result.batch_size}, {result.device}; memory: {result.memory_kind}")  # fmt: skip
    print(f"  {base.label:12s} {base.params / 1e6:7.2f} M params  {base.median_s * 1e3:8.1f} ms  "
          f"{base.peak_memory_mb:8.1f} MB  (baseline)")  # fmt: skip
    for cost, (_, time_ratio, memory_ratio) in zip(result.candidates, result.ratios(), strict=True):
        print(f"  {cost.label:12s} {cost.params / 1e6:7.2f} M params  {cost.median_s * 1e3:8.1f} "
              f"ms  {cost.peak_memory_mb:8.1f} MB  time x{time_ratio:.2f}  memory "
              f"x{memory_ratio:.2f}")  # fmt: skip
    return 0
