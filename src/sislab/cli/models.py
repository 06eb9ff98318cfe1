"""``sislab models list|summary``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the model commands."""
    models = sub.add_parser("models", help="registered methods and their sizes")
    models_sub = models.add_subparsers(dest="models", required=True, metavar="ACTION")
    listing = models_sub.add_parser("list", help="registered methods")
    listing.set_defaults(handler=_list)
    summary = models_sub.add_parser("summary", help="parameters and GFLOPs of a method")
    summary.add_argument("method")
    summary.add_argument("--dataset", default="cityscapes", help="dataset preset")
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    speed = summary.add_argument_group("inference speed (GroupDNet's FPS)")
    speed.add_argument("--fps", action="store_true", help="also time the generator's forward")
    speed.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if any)")
    speed.add_argument("--batch", type=int, default=1, help="images per forward (papers: 1)")
    speed.add_argument("--warmup", type=int, default=3, help="untimed forwards first")
    speed.add_argument("--iterations", type=int, default=10, help="timed forwards")
    memory = summary.add_argument_group("training memory of one step (measured, not modelled)")
    memory.add_argument(
        "--memory", type=int, default=None, metavar="BATCH",
        help="run real training steps (G and D, all losses) on BATCH images of this method, "
        "dataset and size, and print their peak memory (CUDA max allocated, CPU peak RSS)",
    )  # fmt: skip
    memory.add_argument(
        "--image-size", type=_size, default=None, help="HxW of --memory (default: the preset's)"
    )
    memory.add_argument(
        "--precision", choices=("fp32", "bf16", "fp16"), default=None,
        help="autocast precision (default: train.precision's default)",
    )  # fmt: skip
    summary.set_defaults(handler=_summary)


def _size(text: str) -> tuple[int, int]:
    from sislab.cli.bench import _size as parse

    return parse(text)


def _list(args: argparse.Namespace) -> int:
    from sislab.models.registry import METHODS

    for name, method in sorted(METHODS.items()):
        print(f"{name:12s} {method.paper}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from sislab.datasets.presets import preset_geometry
    from sislab.metrics.summary import inference_speed, summarize
    from sislab.models.presets import preset_in_use, with_resolved_preset
    from sislab.models.registry import get_method

    geometry = preset_geometry(args.dataset)
    # The method's defaults, with its dataset preset (`preset: auto`) resolved for the dataset.
    config = with_resolved_preset(get_method(args.method).config(), geometry)
    preset = preset_in_use(config, geometry)
    summary = summarize(args.method, config, geometry)
    if args.fps:
        speed = inference_speed(
            args.method, config, geometry, args.device, args.batch, args.warmup, args.iterations
        )
        summary = summary.model_copy(update={"speed": speed})
    data = {"dataset": args.dataset, "height": geometry.height, "width": geometry.width,
            "preset": preset, **summary.model_dump()}  # fmt: skip
    if args.memory is not None:
        data["memory"] = _training_memory(args, config)
    if args.json:
        print(json.dumps(data))
        return 0
    using = f", preset {preset}" if preset else ""
    print(f"{args.method} on {args.dataset} ({geometry.height}x{geometry.width}{using})")
    print(f"  generator      {summary.generator_params / 1e6:8.2f} M params, "
          f"{summary.generator_gflops:.2f} GMACs")  # fmt: skip
    print(f"  discriminator  {summary.discriminator_params / 1e6:8.2f} M params")
    print(f"  encoder        {summary.encoder_params / 1e6:8.2f} M params")
    if summary.speed is not None:
        speed = summary.speed
        print(f"  inference      {speed.images_per_s:8.2f} images/s on {speed.device}, "
              f"batch {speed.batch_size} ({speed.iterations} timed after {speed.warmup} warm-up)")  # fmt: skip
    if args.memory is not None:
        memory = data["memory"]
        print(f"  training       {memory['peak_mb']:8.0f} MB peak for batch {memory['batch_size']} "
              f"at {memory['height']}x{memory['width']} {memory['precision']} on "
              f"{memory['device']} ({memory['kind']} over {memory['steps']} real training "
              f"steps{memory['note']})")  # fmt: skip
    return 0


def _training_memory(args: argparse.Namespace, config) -> dict:
    """Peak memory of real training steps (``sislab bench train``'s path) at the asked size."""
    from sislab.trainers.batch_probe import PROBE_STEPS
    from sislab.trainers.bench import bench_train

    baseline = _rss_mb()
    result = bench_train(
        args.method, args.dataset, size=args.image_size, batch_size=args.memory, iters=1,
        warmup=PROBE_STEPS - 1, precision=args.precision, device=args.device, model_config=config,
    )  # fmt: skip
    note = ""
    if result.device == "cpu":
        note = f"; {baseline:.0f} MB of it is the process before the model was built"
    return {"batch_size": result.batch_size, "height": result.height, "width": result.width,
            "precision": result.precision, "device": result.device, "peak_mb": result.peak_memory_mb,
            "kind": result.memory_kind, "steps": PROBE_STEPS, "note": note}  # fmt: skip


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
