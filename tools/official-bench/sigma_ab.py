#!/usr/bin/env python
"""sislab's training step with spectral norm's sigma gradient added into the weight's in one node
(as shipped, ``models/convs/rank_one_sigma.py``) against autograd's outer product and addition
(the previous code), alternating whole steps in one process.

    python tools/official-bench/sigma_ab.py --method spade --size 64x128 --pairs 16
        [--model preset=cityscapes] [--precision bf16]

Both paths run the same procedure on the same batch; each pair's order alternates (new old,
old new, ...). Prints one JSON line: median seconds of each path, the median of the pairs'
new/old ratios and their range, the load average. The previous path: sigma as autograd's
``vdot(u, mv(W, v))`` on the original weight (torch's spectral norm), and the SCC candidates'
sigmas as the einsum they were (which autocast runs as a bf16 ``bmm``).
"""

from __future__ import annotations

import json
import os
import statistics
import time

import torch
from profile_sislab import build_step, step_parser

from sislab.models.convs import grouped_spectral_norm, rank_one_sigma, spectral_norm


def _previous_sigma(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor):
    return weight, rank_one_sigma._sigma(weight, u, v)


def _previous_grouped_sigma(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor):
    matrix = weight.reshape(u.shape[0], u.shape[1], -1)
    return weight, torch.einsum("gr,grc,gc->g", u, matrix, v)


def _use(previous: bool) -> None:
    spectral_norm.weight_and_sigma = (
        _previous_sigma if previous else rank_one_sigma.weight_and_sigma
    )
    grouped_spectral_norm.weight_and_sigma = (
        _previous_grouped_sigma if previous else rank_one_sigma.weight_and_sigma
    )


def main() -> int:
    parser = step_parser()
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    procedure, batch, values = build_step(
        args.method, args.dataset, args.size, args.model, args.precision
    )
    for previous in (True, False):  # one warm-up step each
        _use(previous)
        procedure.train_step(batch)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for pair in range(args.pairs):
        for previous in (False, True) if pair % 2 == 0 else (True, False):
            _use(previous)
            start = time.perf_counter()
            procedure.train_step(batch)
            seconds[previous].append(time.perf_counter() - start)
    ratios = [new / old for new, old in zip(seconds[False], seconds[True], strict=True)]
    print(
        json.dumps(
            {
                "method": args.method,
                "size": args.size,
                "precision": args.precision,
                "model": values,
                "pairs": args.pairs,
                "load_1min": os.getloadavg()[0],
                "old_s": round(statistics.median(seconds[True]), 4),
                "new_s": round(statistics.median(seconds[False]), 4),
                "new_over_old": round(statistics.median(ratios), 4),
                "range": [round(min(ratios), 4), round(max(ratios), 4)],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
