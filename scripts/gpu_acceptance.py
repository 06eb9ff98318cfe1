"""GPU acceptance of sislab on one CUDA machine (issue 19), printed as one table.

Checks, each a row: every method trains through the sweep path (``run_sweep``: Tune trials of
Ray Train workers, MLflow runs) with one worker in fp32 and in bf16; two workers share the one GPU
(gloo, as NCCL refuses two ranks on one device), with ``train.micro_batch_size: auto`` (each
worker probes its micro-batch, the trial logs ``probe.*``); the batch probe alone on a worker
batch too large for the device (CUDA: the out-of-memory errors of the binary search are caught);
``sislab bench train`` for SPADE and SC-GAN; and one profiled training step per method, counting host-device copies and host syncs
(``aten::_local_scalar_dense``: ``.item()``, ``bool(tensor)``) beyond the batch, which is moved to
the device before the profiled step. ``--device cpu`` runs the same table tiny (64 px, 2
iterations, narrow widths) for a test on a machine without a GPU.

Run it from a fresh clone with ``make venv && scripts/gpu-acceptance.sh``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ALL_METHODS = (
    "spade", "clade", "clade-icpe", "oasis", "va-spade", "va-clade", "va-oasis", "groupdnet",
    "scgan",
)  # fmt: skip
BENCH_METHODS = ("spade", "scgan")
# Narrow widths for the CPU dry run, as one-value grids of each method's sub-space.
TINY = {
    "spade": {"model.ngf": 8, "model.ndf": 8},
    "clade": {"model.ngf": 8, "model.ndf": 8},
    "clade-icpe": {"model.ngf": 8, "model.ndf": 8},
    "oasis": {"model.ngf": 8, "model.ndf": 8, "model.z_dim": 4, "model.spade_hidden": 8},
    "va-spade": {"model.ngf": 8, "model.ndf": 8, "model.spade_hidden": 8},
    "va-clade": {"model.ngf": 8, "model.ndf": 8, "model.spade_hidden": 8},
    "va-oasis": {"model.ngf": 8, "model.ndf": 8, "model.spade_hidden": 8, "model.padding": "zeros"},
    "groupdnet": {
        "model.ngf": 8, "model.encoder_ndf": 8, "model.ndf": 4, "model.num_d": 1,
        "model.num_upsampling_layers": "normal", "model.cg_mlp_style": "cityscapes",
    },
    "scgan": {"model.ngf": 2, "model.nff": 2, "model.nrf": 2, "model.ndf": 4},
}  # fmt: skip
NUM_CLASSES = 8  # GroupDNet's DeepFashion preset splits into 8 groups
PROFILED_EVENTS = {
    "DtoH": "Memcpy DtoH",
    "HtoD": "Memcpy HtoD",
    "syncs": "aten::_local_scalar_dense",
}


@dataclass
class Row:
    """One line of the table."""

    check: str
    setting: str
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class Settings:
    """What the run does: the device, image size, iterations and which methods."""

    device: str
    size: int
    iters: int
    methods: tuple[str, ...]
    bench_methods: tuple[str, ...]

    @property
    def tiny(self) -> bool:
        return self.device == "cpu"


def _base_spec(settings: Settings, name: str, workers: int, gpus_per_worker: float) -> dict:
    """A sweep spec on synthetic layouts with enough rows for ``iters`` batches of 2 per worker."""
    rows = 2 * settings.iters * workers
    size = settings.size
    return {
        "name": name,
        "method": settings.methods[0],
        "dataset": {
            "uri": f"synthetic://shapes?size={size}&classes={NUM_CLASSES}&num={rows}&val=2",
            "image_size": [size, size],
        },
        "train": {
            "epochs": 1,
            "lr_decay_epochs": 0,
            "batch_size": 2 * workers,
            "max_iters_per_epoch": settings.iters,
            "log_every_iters": settings.iters,
        },
        "losses": {"perceptual": 0.0},
        "eval": {"metrics": [], "num_grid_samples": 1},
        "resources": {
            "num_workers": workers,
            "use_gpu": settings.device == "cuda",
            "cpus_per_worker": 0.2 if settings.tiny else 1.0,
            **({"gpus_per_worker": gpus_per_worker} if settings.device == "cuda" else {}),
        },
    }


def _sub_space(settings: Settings, method: str, extra: dict) -> dict:
    fixed = TINY[method] if settings.tiny else {}
    return {**{k: {"grid": [v]} for k, v in fixed.items()}, **extra}


def _sweep(data: dict, tmp: Path) -> tuple[list[dict], float]:
    """Run the sweep through ``run_sweep``; returns each trial's method, params and metrics."""
    from mlflow.tracking import MlflowClient
    from rich.console import Console
    from ruamel.yaml import YAML

    from sislab.orchestrator.run_dir import RunDir
    from sislab.orchestrator.sweep import run_sweep
    from sislab.spec.loader import load_spec

    spec_path = tmp / f"{data['name']}.yaml"
    with spec_path.open("w") as handle:
        YAML().dump(data, handle)
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp, spec.name, tmp / data["name"])
    started = time.perf_counter()
    run_sweep(spec, spec_path, run_dir=run_dir, console=Console(quiet=True))
    seconds = time.perf_counter() - started
    state = run_dir.load_state()
    client = MlflowClient(state.tracking_uri)
    children = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{state.parent_run_id}'"
    )
    trials = [
        {
            "method": c.data.params.get("method", "?"),
            "precision": c.data.params.get("train.precision", "?"),
            "status": c.info.status,
            "metrics": c.data.metrics,
            "error": c.data.tags.get("sislab.error", ""),
            "probe": {k: v for k, v in c.data.params.items() if k.startswith("probe.")},
        }
        for c in children
    ]
    return trials, seconds


def sweep_spec(settings: Settings) -> dict:
    """The spec of the sweep check: every method x {fp32, bf16} with one worker, in one sweep
    (trials share the GPU)."""
    concurrency = 4
    data = _base_spec(settings, "acceptance-methods", 1, 1.0 / concurrency)
    precisions = {"train.precision": {"grid": ["fp32", "bf16"]}}
    data["search"] = {
        "methods": {m: _sub_space(settings, m, precisions) for m in settings.methods},
        "max_concurrent_trials": concurrency,
    }
    return data


def sweep_rows(settings: Settings, tmp: Path) -> list[Row]:
    """Run :func:`sweep_spec`'s sweep: a row per method and precision."""
    trials, seconds = _sweep(sweep_spec(settings), tmp)
    rows = []
    for method in settings.methods:
        for precision in ("fp32", "bf16"):
            found = [t for t in trials if t["method"] == method and t["precision"] == precision]
            ok = len(found) == 1 and found[0]["status"] == "FINISHED"
            detail = "no trial" if not found else found[0]["status"]
            if found and ok:
                speed = found[0]["metrics"].get("train/images_per_s")
                detail = f"loss_g {found[0]['metrics'].get('train/loss_g', float('nan')):.3g}"
                detail += f", {speed:.1f} img/s" if speed is not None else ""
            elif found and found[0]["error"]:
                detail += f": {found[0]['error'][:80]}"
            setting = f"{method} {precision}, 1 worker, {settings.iters} it"
            rows.append(Row("sweep", setting, ok, seconds / len(trials or [1]), detail))
    return rows


def shared_device_row(settings: Settings, tmp: Path) -> Row:
    """Two workers of one trial on the same device (half a GPU each: gloo, not NCCL)."""
    method = settings.methods[0]
    data = _base_spec(settings, "acceptance-two-workers", 2, 0.5)
    data["search"] = {"methods": {method: _sub_space(settings, method, {})}}
    data["train"]["micro_batch_size"] = "auto"
    data["resources"]["memory_per_worker_mb"] = 64_000  # CPU: a budget every micro-batch fits
    trials, seconds = _sweep(data, tmp)
    ok = len(trials) == 1 and trials[0]["status"] == "FINISHED" and bool(trials[0]["probe"])
    detail = trials[0]["status"] if trials else "no trial"
    if trials and trials[0]["error"]:
        detail += f": {trials[0]['error'][:80]}"
    if trials:
        detail += ", " + ", ".join(f"{k} {v}" for k, v in sorted(trials[0]["probe"].items()))
    setting = f"{method}, 2 workers on one {settings.device} device, micro-batch auto"
    return Row("ddp", setting, ok, seconds, detail)


def probe_row(settings: Settings) -> Row:
    """The batch probe on one worker batch: on CUDA larger than the GPU holds at once (OOM
    caught), on CPU a tiny one under a roomy budget (the code path only)."""
    import torch

    from sislab.spec.loader import spec_from_dict
    from sislab.trainers import build
    from sislab.trainers.batch_probe import device_budget_mb, probe_micro_batch

    method = settings.methods[0]
    device = torch.device(settings.device)
    worker_batch = 4 if settings.tiny else 1024
    data = _base_spec(settings, "acceptance-probe", 1, 1.0)
    data["train"]["batch_size"] = worker_batch
    data["dataset"]["uri"] = data["dataset"]["uri"].replace(
        f"num={2 * settings.iters}", f"num={worker_batch}"
    )
    data["model"] = {k.removeprefix("model."): v for k, v in TINY[method].items()} if (
        settings.tiny) else {}  # fmt: skip
    started = time.perf_counter()
    try:
        spec = spec_from_dict(data)
        geometry = build.dataset_geometry(spec)

        def procedure():
            return build.build_procedure(spec, geometry, device, 1, lambda m: m.to(device))[0]

        budget = device_budget_mb(device, 64_000)
        result = probe_micro_batch(procedure, geometry, worker_batch, device, budget)
    except Exception as err:  # a row of the table, not a crash of the whole run
        return Row("probe", method, False, time.perf_counter() - started, repr(err))
    tried = ", ".join(
        f"{m}: {'OOM' if p is None else f'{p:.0f} MB'}" for m, p in sorted(result.tried.items())
    )
    ok = result.peak_mb <= result.budget_mb
    detail = (f"micro-batch {result.micro_batch_size} x {result.accumulation}, peak "
              f"{result.peak_mb:.0f} of {result.budget_mb:.0f} MB ({result.kind}); tried {tried}")  # fmt: skip
    setting = f"{method}, worker batch {worker_batch} at {settings.size} px"
    return Row("probe", setting, ok, time.perf_counter() - started, detail)


def bench_rows(settings: Settings) -> list[Row]:
    """``sislab bench train`` (the same function) for SPADE and SC-GAN."""
    from sislab.models.registry import get_method
    from sislab.trainers.bench import bench_train

    rows = []
    for method in settings.bench_methods:
        config = None
        size = None
        if settings.tiny:
            fields = {k.removeprefix("model."): v for k, v in TINY[method].items()}
            config = get_method(method).config(**fields)
            size = (settings.size, 2 * settings.size)  # Cityscapes is 1:2; a 1x1 latent breaks BN
        started = time.perf_counter()
        try:
            result = bench_train(
                method, "cityscapes", size=size, batch_size=1, iters=2 if settings.tiny else 5,
                warmup=1 if settings.tiny else 2, precision="fp32", device=settings.device,
                model_config=config,
            )  # fmt: skip
        except Exception as err:  # a row of the table, not a crash of the whole run
            rows.append(Row("bench", method, False, time.perf_counter() - started, repr(err)))
            continue
        detail = ", ".join(f"{k} {v:.4g}" for k, v in vars(result).items() if _is_number(v))
        rows.append(Row("bench", method, True, time.perf_counter() - started, detail))
    return rows


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def count_copies(procedure, batch: dict, device) -> dict[str, int]:
    """Host-device copies and host syncs of one ``train_step`` (the batch already on device)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    procedure.train_step(batch)  # warm-up: lazy initialisation is not the step's
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    with profile(activities=activities) as prof:
        procedure.train_step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    counts = dict.fromkeys([*PROFILED_EVENTS, "optimizer_syncs"], 0)
    for event in prof.events():
        for key, prefix in PROFILED_EVENTS.items():
            if event.name.startswith(prefix):
                # torch.optim's non-fused Adam (CPU) reads its step counters on the host; the
                # fused CUDA Adam the procedures use on GPU does not.
                key = "optimizer_syncs" if key == "syncs" and _in_optimizer(event) else key
                counts[key] += 1
    return counts


def _in_optimizer(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("Optimizer.step"):
            return True
        parent = parent.cpu_parent
    return False


def profile_rows(settings: Settings) -> list[Row]:
    """One profiled step per method: no copies or syncs beyond the batch."""
    import torch

    from sislab.spec.loader import spec_from_dict
    from sislab.trainers import build

    device = torch.device(settings.device)
    rows = []
    for method in settings.methods:
        data = _base_spec(settings, "acceptance-profile", 1, 1.0)
        data["method"] = method
        fields = TINY[method] if settings.tiny else {}
        data["model"] = {k.removeprefix("model."): v for k, v in fields.items()}
        started = time.perf_counter()
        try:
            spec = spec_from_dict(data)
            geometry = build.dataset_geometry(spec)
            procedure, _ = build.build_procedure(spec, geometry, device, 1, lambda m: m.to(device))
            batch = next(iter(build.synthetic_source(spec, 0, 1).batches(0)))
            batch = {k: v.to(device) for k, v in batch.items()}
            counts = count_copies(procedure, batch, device)
        except Exception as err:
            rows.append(Row("profile", method, False, time.perf_counter() - started, repr(err)))
            continue
        ok = not any(
            v for k, v in counts.items() if k != "optimizer_syncs" or device.type == "cuda"
        )
        detail = ", ".join(f"{k} {v}" for k, v in counts.items())
        rows.append(Row("profile", f"{method} step", ok, time.perf_counter() - started, detail))
    return rows


def table(rows: list[Row]) -> str:
    """The rows as one Markdown table."""
    lines = ["| check | setting | result | s | detail |", "|---|---|---|---:|---|"]
    for row in rows:
        result = "ok" if row.ok else "FAILED"
        lines.append(
            f"| {row.check} | {row.setting} | {result} | {row.seconds:.1f} | {row.detail} |"
        )
    return "\n".join(lines)


CHECKS = ("sweep", "ddp", "probe", "bench", "profile")


def run(settings: Settings, workdir: Path, checks: tuple[str, ...] = CHECKS) -> list[Row]:
    """The checks in order (``checks``: which of ``CHECKS``; sweep and ddp start Ray, the others
    run in this process); a check that fails is a FAILED row, the others still run."""
    rows = []
    if "sweep" in checks:
        rows += sweep_rows(settings, workdir)
    if "ddp" in checks:
        rows.append(shared_device_row(settings, workdir))
    if "probe" in checks:
        rows.append(probe_row(settings))
    if "bench" in checks:
        rows += bench_rows(settings)
    if "profile" in checks:
        rows += profile_rows(settings)
    return rows


def _checks(text: str) -> tuple[str, ...]:
    chosen = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in chosen if c not in CHECKS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(CHECKS)}")
    return chosen


def parse_args(argv: list[str] | None) -> tuple[Settings, Path | None, tuple[str, ...]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--methods", default=None, help="comma-separated (default: all nine; cpu: spade,oasis)"
    )
    parser.add_argument("--iters", type=int, default=None, help="default: 20 (cpu: 2)")
    parser.add_argument("--size", type=int, default=None, help="pixels (default: 128; cpu: 64)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument(
        "--checks",
        type=_checks,
        default=CHECKS,
        help=f"comma-separated (default: {','.join(CHECKS)})",
    )
    args = parser.parse_args(argv)
    cpu = args.device == "cpu"
    methods = args.methods.split(",") if args.methods else (["spade", "oasis"] if cpu else None)
    return (
        Settings(
            device=args.device,
            size=args.size or (64 if cpu else 128),
            iters=args.iters or (2 if cpu else 20),
            methods=tuple(methods or ALL_METHODS),
            bench_methods=BENCH_METHODS,
        ),
        args.out,
        args.checks,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the checks, print the table; exit status 1 when a row failed, 2 without CUDA."""
    settings, out, checks = parse_args(argv)
    if settings.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("no CUDA device: run on a GPU machine, or --device cpu for the dry run")
            return 2
    with tempfile.TemporaryDirectory(prefix="sislab-acceptance-") as tmp:
        rows = run(settings, Path(tmp), checks)
    text = table(rows)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
