"""``sislab bench orchestration|train``: measurements printed with their baselines."""

from __future__ import annotations

import argparse
import json


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HxW, e.g. 256x512") from None
    return height, width


def register(sub: argparse._SubParsersAction) -> None:
    """Add the benchmarks."""
    orch = sub.add_parser(
        "orchestration", help="trivial 2-trial sweep through sislab and plain Ray Tune + Train"
    )
    orch.add_argument("--repeats", type=int, default=1, help="runs per side (median reported)")
    orch.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray")
    orch.set_defaults(handler=_orchestration)
    train = sub.add_parser("train", help="seconds per training iteration and peak memory")
    train.add_argument("method")
    train.add_argument("--dataset", default="cityscapes", help="dataset preset")
    train.add_argument("--size", type=_size, default=None, help="HxW (default: the preset's)")
    train.add_argument("--batch", type=int, default=1)
    train.add_argument("--iters", type=int, default=5)
    train.add_argument("--warmup", type=int, default=2)
    train.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.set_defaults(handler=_train)


def _orchestration(args: argparse.Namespace) -> int:
    from sislab.orchestrator.bench import bench_orchestration

    result = bench_orchestration(args.repeats, args.num_cpus)
    print(f"plain Ray Tune + Train: {', '.join(f'{s:.1f}s' for s in result.plain_s)}")
    print(f"sislab run:             {', '.join(f'{s:.1f}s' for s in result.sislab_s)}")
    print(f"ratio sislab / plain (medians): {result.ratio:.3f}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from sislab.trainers.bench import bench_train

    result = bench_train(
        args.method, args.dataset, size=args.size, batch_size=args.batch, iters=args.iters,
        warmup=args.warmup, precision=args.precision, device=args.device,
    )  # fmt: skip
    if args.json:
        print(json.dumps(result.__dict__))
        return 0
    print(
        f"{result.method} on {result.dataset} {result.height}x{result.width}, batch "
        f"{result.batch_size}, {result.device}, {result.precision}: median "
        f"{result.median_s:.3f} s/iter over {len(result.iter_s)} iters "
        f"({result.batch_size / result.median_s:.2f} images/s); peak memory "
        f"{result.peak_memory_mb:.0f} MB ({result.memory_kind}); VGG19 weights "
        f"{result.vgg_weights}"
    )
    return 0
