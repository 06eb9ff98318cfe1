#!/usr/bin/env python
"""What autograd keeps for the backward of sislab's training step, by the op that keeps it.

    python tools/official-bench/saved_tensors.py --method spade --size 256x512 [--top 15]
        [--model preset=cityscapes]

Builds the procedure as ``sislab bench train`` does, runs one step, and at every ``backward``
call walks the autograd graph from the loss: each node's ``_saved_*`` tensors, counted once per
storage (a tensor two nodes keep is counted once, for the first node reached), parameters not
counted. Prints one JSON
line per backward: its total MB and the top (node, attribute) pairs by MB. Counts, not timings:
they do not depend on the machine's load.
"""

from __future__ import annotations

import collections
import gc
import json

import torch
from profile_sislab import build_step, step_parser
from torch import nn


def census(
    roots: list[torch.Tensor], parameters: set[int]
) -> tuple[float, list[tuple[str, float]]]:
    """Bytes of the distinct storages the graph behind ``roots`` saves, by node and attribute.

    Storages of parameters (``parameters``: their data pointers) are not counted: they exist
    without the graph.
    """
    seen_nodes: set[int] = set()
    seen_storages: set[int] = set(parameters)
    by_kind: collections.Counter[str] = collections.Counter()
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        # Built-in nodes expose ``_saved_<name>``; custom autograd.Functions ``saved_tensors``.
        for attr in dir(node):
            if not attr.startswith("_saved_") and attr != "saved_tensors":
                continue
            try:
                value = getattr(node, attr)
            except RuntimeError:  # freed or not a tensor
                continue
            values = value if isinstance(value, tuple) else (value,)
            for tensor in values:
                if not isinstance(tensor, torch.Tensor) or tensor.numel() == 0:
                    continue
                storage = tensor.untyped_storage()
                key = storage.data_ptr()
                if key in seen_storages:
                    continue
                seen_storages.add(key)
                by_kind[f"{type(node).__name__}.{attr}"] += storage.nbytes()
        stack.extend(fn for fn, _ in node.next_functions if fn is not None)
    total = sum(by_kind.values())
    return total / 2**20, [(k, v / 2**20) for k, v in by_kind.most_common()]


def main() -> int:
    parser = step_parser()
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(2)
    procedure, batch, _ = build_step(args.method, args.dataset, args.size, args.model)

    real_backward = torch.autograd.backward

    def counting_backward(tensors, *rest, **named):
        roots = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
        parameters = {
            o.untyped_storage().data_ptr() for o in gc.get_objects() if isinstance(o, nn.Parameter)
        }
        total, top = census(roots, parameters)
        print(
            json.dumps(
                {
                    "method": args.method,
                    "size": args.size,
                    "saved_mb": round(total, 1),
                    "top": [[k, round(v, 1)] for k, v in top[: args.top]],
                }
            )
        )
        return real_backward(tensors, *rest, **named)

    torch.autograd.backward = counting_backward
    procedure.train_step(batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
