"""The unfaulted reference of a synthetic-data trial: the same training, on as many gloo ranks as
the trial had Train workers, in local processes, without Ray, storage, tracking or faults.

The same code trains (``build.build_procedure`` with ``worker.make_wrap``, ``loop.run_training``),
each rank seeded by ``derive_seed(seed, rank, epoch)`` and fed its shard of the synthetic layouts,
as in a Train worker; so a chaos run's final weights must equal these when every restart restored
the weights, optimiser moments, RNG streams and data position exactly. One rank would not do:
ranks draw different noise, so 2 ranks x B is not 1 rank x 2B sample for sample.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sislab.chaos.servers import free_port


class _RankContext:
    """``TrainContext`` of one local gloo rank: no checkpoints (nothing restarts here)."""

    def __init__(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size, self.device = rank, world_size, torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        del metrics, checkpoint_dir

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        yield None

    def best_checkpoint_uri(self) -> str:
        return ""

    def save_best(self, checkpoint_dir: Path) -> None:
        del checkpoint_dir


def _train_rank(rank: int, world_size: int, port: int, spec_data: dict, out: str) -> None:
    from sislab.spec.spec import Spec
    from sislab.trainers import build
    from sislab.trainers.loop import run_training
    from sislab.trainers.tracking import NullTracker
    from sislab.trainers.worker import make_wrap

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        spec = Spec.model_validate(spec_data)
        ctx = _RankContext(rank, world_size)
        geometry = build.dataset_geometry(spec)
        wrap = make_wrap(ctx.device, world_size, spec.train.sync_bn)
        procedure, _ = build.build_procedure(spec, geometry, ctx.device, world_size, wrap)
        run_training(
            build.loop_config(spec, geometry, None, build.model_size(procedure)),
            ctx=ctx,
            source=build.synthetic_source(spec, rank, world_size),
            tracker=NullTracker(),
            procedure=procedure,
            evaluator=build.evaluator(spec, geometry, ctx.device, ctx.is_main),
        )
        if rank == 0:
            torch.save(procedure.state_dict(), out)
    finally:
        dist.destroy_process_group()


def reference_state(spec_data: dict[str, Any]) -> dict[str, Any]:
    """The procedure state (generator, discriminator, optimisers) after the trial whose resolved
    spec is ``spec_data`` trains without faults on ``resources.num_workers`` local ranks."""
    world_size = int(spec_data["resources"]["num_workers"])
    with tempfile.TemporaryDirectory(prefix="sislab-chaos-ref-") as tmp:
        out = str(Path(tmp) / "state.pt")
        mp.spawn(_train_rank, args=(world_size, free_port(), spec_data, out), nprocs=world_size)
        return torch.load(out, weights_only=True)
