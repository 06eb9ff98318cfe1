"""``sislab bench orchestration|train|checkpoint|trial``: measurements printed with their baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HxW, e.g. 256x512") from None
    return height, width


def register(sub: argparse._SubParsersAction) -> None:
    """Add the benchmarks."""
    orch = sub.add_parser(
        "orchestration",
        help="a sweep of trivial trials through sislab and through plain Ray Tune: per-trial "
        "overhead and the driver's memory",
    )
    orch.add_argument("--trials", type=int, default=200, help="trials per sweep")
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
    train.add_argument(
        "--precision", choices=("fp32", "bf16", "fp16"), default=None,
        help="autocast precision (default: train.precision's default, as a trial)",
    )  # fmt: skip
    train.add_argument(
        "--channels-last", action=argparse.BooleanOptionalAction, default=None,
        help="train.channels_last (default: its spec default, as a trial)",
    )  # fmt: skip
    train.add_argument(
        "--unfolded-convs", action=argparse.BooleanOptionalAction, default=None,
        help="train.unfolded_convs (default: its spec default, as a trial)",
    )  # fmt: skip
    train.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=None,
        help="train.compile; compile time is reported apart as compile_s",
    )  # fmt: skip
    train.add_argument(
        "--reuse-host-memory", action=argparse.BooleanOptionalAction, default=None,
        help="train.reuse_host_memory (default: its spec default, auto, as a trial: on only "
        "where torch's huge pages are off)",
    )  # fmt: skip
    train.add_argument(
        "--model", action="append", default=[], metavar="KEY=VALUE",
        help="a field of the method's model config, e.g. --model preset=cityscapes "
        "--model num_norm_candidates=4 (repeatable; values are YAML scalars)",
    )  # fmt: skip
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.set_defaults(handler=_train, tcmalloc=True)
    checkpoint = sub.add_parser(
        "checkpoint",
        help="writing a trial's checkpoint (hashed while written) against writing it, then "
        "hashing the file",
    )
    checkpoint.add_argument("method")
    checkpoint.add_argument("--dataset", default="cityscapes", help="dataset preset")
    checkpoint.add_argument("--size", type=_size, default=None, help="HxW (default: the preset's)")
    checkpoint.add_argument("--repeats", type=int, default=7, help="writes per side")
    checkpoint.add_argument(
        "--model", action="append", default=[], metavar="KEY=VALUE",
        help="a field of the method's model config (repeatable), as in bench train",
    )  # fmt: skip
    checkpoint.add_argument("--json", action="store_true", help="print one JSON object")
    checkpoint.set_defaults(handler=_checkpoint)
    trial = sub.add_parser(
        "trial",
        help="a trial's s/iter (steady state and each epoch's first iteration) against the bare "
        "step of its configuration",
        description="Times the bare training step of the spec's configuration in this process "
        "(as bench train and estimate), then runs the spec as `sislab run` does (local Ray, one "
        "trial) and reads the per-epoch timings its loop logged (system/first_iter_s, "
        "system/iter_s). The spec must hold one configuration.",
    )  # fmt: skip
    trial.add_argument("spec", help="YAML spec file of one configuration")
    trial.add_argument("--iters", type=int, default=5, help="timed bare iterations")
    trial.add_argument("--warmup", type=int, default=2, help="untimed bare iterations first")
    trial.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray")
    trial.add_argument(
        "--runs-root", type=Path, default=Path("runs"), help="parent of the trial's run folder"
    )
    trial.add_argument("--json", action="store_true", help="print one JSON object")
    trial.set_defaults(handler=_trial, tcmalloc=True)


def _model_config(method: str, pairs: list[str]):
    """The method's config from ``KEY=VALUE`` pairs (None: no pairs, the defaults).

    Raises:
        SpecError: A pair without ``=``, or a value the method's config rejects.
    """
    if not pairs:
        return None
    import yaml
    from pydantic import ValidationError

    from sislab.errors import SpecError
    from sislab.models.registry import get_method

    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(f"--model {pair!r}: expected KEY=VALUE", fix="e.g. --model ngf=32")
        values[key.strip()] = yaml.safe_load(value)
    config_cls = get_method(method).config
    try:
        return config_cls(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise SpecError(
            f"--model for {method}: {problems}",
            fix=f"fields of {config_cls.__name__}: {', '.join(config_cls.model_fields)}",
        ) from None


def _orchestration(args: argparse.Namespace) -> int:
    from sislab.orchestrator.bench import bench_orchestration

    result = bench_orchestration(args.trials, args.repeats, args.num_cpus)
    n = result.trials
    for name, runs in (("plain Ray Tune", result.plain), ("sislab run", result.sislab)):
        for run in runs:
            quarters = ", ".join(f"{run.mb_at(q):.0f}" for q in (0.25, 0.5, 0.75, 1.0))
            print(
                f"{name:<15} {n} trials: {run.seconds:.1f} s total, {run.seconds / n * 1e3:.0f} "
                f"ms/trial; driver RSS peak {run.peak_mb:.0f} MB, at 1/4, 1/2, 3/4, end of the "
                f"run: {quarters} MB"
            )
    print(f"per-trial overhead ratio sislab / plain (medians): {result.ratio:.3f}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from sislab.trainers.bench import bench_train

    result = bench_train(
        args.method, args.dataset, size=args.size, batch_size=args.batch, iters=args.iters,
        warmup=args.warmup, precision=args.precision, channels_last=args.channels_last,
        unfolded_convs=args.unfolded_convs, compile=args.compile,
        reuse_host_memory=args.reuse_host_memory, device=args.device,
        model_config=_model_config(args.method, args.model),
    )  # fmt: skip
    if args.json:
        print(json.dumps(asdict(result)))
        return 0
    switches = (
        f"{result.precision}, channels_last {result.channels_last}, unfolded_convs "
        f"{result.unfolded_convs}, compile {result.compile}, "
        f"host allocator {result.host_allocator}, reuse_host_memory "
        f"{result.reuse_host_memory}, huge pages {result.huge_pages}"
    )
    print(
        f"{result.method} on {result.dataset} {result.height}x{result.width}, batch "
        f"{result.batch_size}, {result.device}, {switches}: median "
        f"{result.median_s:.3f} s/iter over {len(result.iter_s)} iters "
        f"({result.batch_size / result.median_s:.2f} images/s); peak memory "
        f"{result.peak_memory_mb:.0f} MB ({result.memory_kind}); VGG19 weights "
        f"{result.vgg_weights}"
    )
    mfu = "" if result.mfu is None else (
        f"; MFU {result.mfu:.1%} of {result.peak_tflop_s:g} TFLOP/s ({result.peak_source})"
    )  # fmt: skip
    print(
        f"model FLOPs {result.model_gflop_per_iter:.1f} GFLOP/iter (3 x forward of G + D): "
        f"{result.achieved_tflop_s * 1e3:.1f} GFLOP/s achieved{mfu}"
    )
    if result.compile_s is not None:
        print(
            f"compile: {result.compile_s:.1f} s once (warm-up beyond steady state); amortised "
            f"over 10k iterations {result.compile_s / 1e4 * 1e3:.2f} ms/iter"
        )
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from sislab.trainers.bench_checkpoint import bench_checkpoint

    result = bench_checkpoint(
        args.method, args.dataset, size=args.size, repeats=args.repeats,
        model_config=_model_config(args.method, args.model),
    )  # fmt: skip
    if args.json:
        print(json.dumps({**asdict(result), "ratio": result.ratio}))
        return 0
    print(
        f"{result.method} {result.height}x{result.width}: state.pt {result.state_mb:.0f} MB; "
        f"median of {len(result.sislab_s)} writes each, alternating: sislab (hashed while "
        f"written) {result.sislab_median_s:.3f} s, plain (torch.save, then sha256 of the "
        f"file) {result.plain_median_s:.3f} s; ratio {result.ratio:.2f}"
    )
    return 0


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _trial(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from sislab.orchestrator.bench_trial import bench_trial
    from sislab.orchestrator.preflight import check_before_run
    from sislab.spec.loader import load_spec

    spec_path = Path(args.spec).resolve()
    spec = check_before_run(load_spec(spec_path), spec_path, num_cpus=args.num_cpus)
    result = bench_trial(
        spec, spec_path, args.runs_root, iters=args.iters, warmup=args.warmup,
        num_cpus=args.num_cpus,
    )  # fmt: skip
    if args.json:
        print(
            json.dumps(
                {
                    **asdict(result),
                    **result.ratios(),
                    "outside_step_s": result.outside_step_s(),
                    "epoch_end_parts_s": result.end_parts_s(),
                },
                default=str,
            )
        )
        return 0
    print(f"{result.label}; trial {result.trial_status}; run folder {result.run_dir}")
    print(
        f"bare step (bench train's path, this process): {result.bare_iter_s:.3f} s/iter before "
        f"the trial, {result.bare_after_iter_s:.3f} after"
    )
    print(
        "epoch  first iteration s (batch wait, step, step CPU)  "
        "steady s/iter (batch wait, step, step CPU: medians)  epoch's end s (of the epoch's s)"
    )
    for e in result.epochs:
        first = ", ".join(_seconds(v) for v in (e.first_batch_wait_s, e.first_step_s,
                                                 e.first_step_cpu_s))  # fmt: skip
        steady = ", ".join(_seconds(v) for v in (e.batch_wait_s, e.step_s, e.step_cpu_s))
        print(
            f"{e.epoch:>5}  {e.first_iter_s:>17.3f} ({first})  {_seconds(e.iter_s):>13} ({steady})"
            f"  {_seconds(e.epoch_end_s):>13} ({_seconds(e.epoch_s)})"
        )
    ratios = result.ratios()
    explained = {
        "steady/bare": "the trial's steady iteration / the bare step "
        f"({_seconds(result.steady_iter_s)} / {result.bare_s:.3f} s: medians; the bare step's "
        "mean of before and after)",
        "first/steady": "an epoch's first iteration / the same epoch's steady iteration (median "
        f"over epochs 2..; first iterations' median {_seconds(result.first_iter_s)} s)",
        "steady/step": "steady iteration / the step inside it (same iterations: what the loop "
        "adds, whatever the machine's drift)",
        "step/bare": "the step inside the trial / the bare step (the same code, another process)",
        "first_step/step": "an epoch's first step / the same epoch's steady step (epochs 2..)",
        "step_cpu/step": "the loop thread's CPU time in the step / its wall time (under 1: "
        "kept off a CPU)",
        "end/epoch": "the epoch's end (evaluation, grid, checkpoint, report) / the whole epoch "
        f"(median over epochs 2..; the ends' median {_seconds(result.epoch_end_s)} s)",
        "epoch/step": "the epoch's wall time per iteration, its end included / the same epoch's "
        "steady step (epochs 2..): all a trial pays per iteration at this epoch length and "
        "these evaluation and checkpoint frequencies",
        "epoch/bare": "the epoch's wall time per iteration, its end included / the bare step",
    }
    for key, text in explained.items():
        if key in ratios:
            print(f"{key:>15}: {ratios[key]:.3f}  {text}")
    if outside := result.outside_step_s():
        print(
            "outside the step (batch wait, copy, checks, logging): "
            + ", ".join(f"{k} iteration {v * 1e3:.1f} ms" for k, v in outside.items())
            + " (medians over epochs; first: epochs 2..)"
        )
    if parts := result.end_parts_s():
        print(
            "the epoch's end, by part (median where it ran, on how many of "
            f"{len(result.epochs)} epochs): "
            + ", ".join(f"{name} {value:.3f} s ({n})" for name, (value, n) in parts.items())
        )
    for note in result.notes:
        print("note:", note)
    return 0 if result.epochs else 1
