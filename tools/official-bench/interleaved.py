#!/usr/bin/env python
"""The official and sislab's training step in ONE process, alternating step by step.

    python interleaved.py --method spade --size 64x128 --pairs 8 [--warmup 2] [--threads 2]
                          [--switch precision=bf16 --switch channels_last=true]

Why: on a shared machine one process's run can be 10-36% slower than the next one's minutes
later (docs/benchmarks.md), so two processes timed one after the other cannot resolve a 10% gap.
Here both sides are built in one process and timed in adjacent steps, ordered
O S, S O, O S, ... (each pair's order alternates, so a drift within a pair favours neither side):
the ratio of a pair is taken within seconds, and the spread of the pairs' ratios says how sure
it is.

Both sides: batch 1, fp32 (unless ``--switch precision=...`` for sislab), the official side
built exactly as official_step.py builds it (its own option parser, trainer and losses, the same
runtime patches), sislab's as ``sislab bench train`` builds it (``bench_procedure``, the model
config side_by_side.sh passes: ``preset=cityscapes`` for SC-GAN and GroupDNet). Torch's huge
pages (``THP_MEM_ALLOC_ENABLE``) are per process, so here both sides get what the environment
says (sislab's default: on; ``THP_MEM_ALLOC_ENABLE=0`` for neither): the ratio then leaves out
what sislab gains from turning them on. Peak memory cannot be told apart in one process: it
stays side_by_side.sh's.

Prints one JSON line on stdout: per-pair seconds of each side, per-pair ratios (sislab /
official), their median, min and max, and the ratio of the two sides' median step times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
# What side_by_side.sh passes to `sislab bench train --model` (the official runs' configs).
MODEL = {"scgan": {"preset": "cityscapes"}, "groupdnet": {"preset": "cityscapes"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--size", default="64x128", help="HxW")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each side first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="then profile one step of each side: self CPU ms and calls of both sides' top N ops",
    )  # fmt: skip
    parser.add_argument(
        "--switch", action="append", default=[], metavar="KEY=VALUE",
        help="a train: field for sislab's side, e.g. precision=bf16 (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # before torch: what `sislab bench` does
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)

    sys.path.insert(0, TOOLS)
    import official_step as official

    real_stdout = sys.stdout
    load_before = os.getloadavg()[0]
    repo_dir = os.path.join(official.HERE, official.REPOS[args.method])
    os.chdir(repo_dir)
    sys.path.insert(0, repo_dir)
    with contextlib.redirect_stdout(sys.stderr):
        import torch

        torch.set_num_threads(args.threads)
        official._patch_runtime(torch)
        torch.manual_seed(0)
        official_step = official.build_official(torch, args.method, height, width, 1, [])[0]
        torch.manual_seed(0)  # OASIS's read_arguments reseeds
        sislab_step = _sislab_step(args.method, height, width, args.switch)

        sides = {"official": official_step, "sislab": sislab_step}
        for _ in range(args.warmup):
            for step in sides.values():
                step()
        pairs = []
        for i in range(args.pairs):
            order = ("official", "sislab") if i % 2 == 0 else ("sislab", "official")
            seconds = {}
            for name in order:
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                start = time.perf_counter()
                sides[name]()
                seconds[name] = time.perf_counter() - start
                seconds[name + "_faults"] = (
                    resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
                )
            pairs.append(seconds)
        profiles = {name: _profile(step) for name, step in sides.items()} if args.profile else {}
    ratios = [p["sislab"] / p["official"] for p in pairs]
    official_median = statistics.median(p["official"] for p in pairs)
    sislab_median = statistics.median(p["sislab"] for p in pairs)
    result = {
        "method": args.method,
        "size": f"{height}x{width}",
        "threads": torch.get_num_threads(),
        "huge_pages": os.environ["THP_MEM_ALLOC_ENABLE"],
        "switches": args.switch,
        "official_s": [round(p["official"], 4) for p in pairs],
        "sislab_s": [round(p["sislab"], 4) for p in pairs],
        "official_minor_faults": [p["official_faults"] for p in pairs],
        "sislab_minor_faults": [p["sislab_faults"] for p in pairs],
        "pair_ratios": [round(r, 4) for r in ratios],
        "ratio_median": round(statistics.median(ratios), 4),
        "ratio_min": round(min(ratios), 4),
        "ratio_max": round(max(ratios), 4),
        "ratio_of_medians": round(sislab_median / official_median, 4),
        "official_median_s": round(official_median, 4),
        "sislab_median_s": round(sislab_median, 4),
        "load_before": load_before,
    }
    if profiles:
        result["profile"] = _profile_table(profiles, args.profile)
        print(
            f"{'op':44s} {'official ms':>11s} {'calls':>6s} {'sislab ms':>10s} {'calls':>6s}",
            file=sys.stderr,
        )
        for row in result["profile"]:
            print(
                f"{row['op'][:44]:44s} {row['official_ms']:>11.1f} {row.get('official_calls', ''):>6}"
                f" {row['sislab_ms']:>10.1f} {row.get('sislab_calls', ''):>6}",
                file=sys.stderr,
            )
    print(json.dumps(result), file=real_stdout, flush=True)
    return 0


def _profile(step) -> dict[str, tuple[float, int]]:
    """Self CPU ms and calls per op of one step (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return {e.key: (e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()}


def _profile_table(profiles: dict, top: int) -> list[dict]:
    """Both sides' ms and calls for the ops that are in either side's top ``top``."""
    official, sislab = profiles["official"], profiles["sislab"]
    keys = set()
    for side in (official, sislab):
        keys |= set(sorted(side, key=lambda k: -side[k][0])[:top])
    rows = []
    for key in sorted(
        keys, key=lambda k: -max(official.get(k, (0, 0))[0], sislab.get(k, (0, 0))[0])
    ):
        o_ms, o_n = official.get(key, (0.0, 0))
        s_ms, s_n = sislab.get(key, (0.0, 0))
        rows.append(
            {
                "op": key,
                "official_ms": round(o_ms, 1),
                "official_calls": o_n,
                "sislab_ms": round(s_ms, 1),
                "sislab_calls": s_n,
            }
        )
    totals = {name: round(sum(ms for ms, _ in side.values()), 1) for name, side in profiles.items()}
    rows.append(
        {"op": "(all ops)", "official_ms": totals["official"], "sislab_ms": totals["sislab"]}
    )
    return rows


def _sislab_step(method_name: str, height: int, width: int, switches: list[str]):
    import yaml
    from profile_sislab import build_step

    model = [f"{k}={v}" for k, v in MODEL.get(method_name, {}).items()]
    fields = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in switches)}
    procedure, batch, _ = build_step(
        method_name, "cityscapes", f"{height}x{width}", model, train_fields=fields
    )
    return lambda: procedure.train_step(batch)


if __name__ == "__main__":
    sys.exit(main())
