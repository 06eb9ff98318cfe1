#!/usr/bin/env python
"""Two settings of sislab's ``train:`` section in ONE process, alternating whole training steps.

    python tools/official-bench/switch_ab.py --method spade --size 256x512 --pairs 5 \\
        --a channels_last=false --b channels_last=true [--model preset=cityscapes]

Both procedures are built as ``sislab bench train`` builds them (``build_step``: the same
synthetic batch, random VGG19, seed 0), each with its own ``train:`` fields on top of the
spec's defaults, then timed in adjacent steps after one warm-up step each, the order within a
pair alternating (A B, B A, ...), so that the machine's drift within a pair favours neither. Prints
one JSON line: both sides' per-pair seconds, the per-pair ratios B / A and their median. Time
only: both procedures live in one process, so peak memory cannot be told apart (use
``sislab bench train`` per setting).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch
import yaml
from profile_sislab import build_step, step_parser


def _fields(pairs: list[str]) -> dict:
    return {k: yaml.safe_load(v) for k, _, v in (p.partition("=") for p in pairs)}


def main() -> int:
    parser = step_parser()
    parser.add_argument("--a", action="append", default=[], help="train field KEY=VALUE of A")
    parser.add_argument("--b", action="append", default=[], help="train field KEY=VALUE of B")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sides = []
    for fields in (_fields(args.a), _fields(args.b)):
        procedure, batch, _ = build_step(
            args.method, args.dataset, args.size, args.model, train_fields=fields
        )
        procedure.train_step(batch)  # warm-up
        sides.append((procedure, batch, []))
    for pair in range(args.pairs):
        for procedure, batch, times in sides if pair % 2 == 0 else sides[::-1]:
            start = time.perf_counter()
            procedure.train_step(batch)
            times.append(time.perf_counter() - start)
    a, b = sides[0][2], sides[1][2]
    ratios = [y / x for x, y in zip(a, b, strict=True)]
    print(
        json.dumps(
            {
                "method": args.method,
                "size": args.size,
                "a": _fields(args.a),
                "b": _fields(args.b),
                "a_s": [round(t, 3) for t in a],
                "b_s": [round(t, 3) for t in b],
                "ratios_b_over_a": [round(r, 3) for r in ratios],
                "median_ratio": round(statistics.median(ratios), 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
