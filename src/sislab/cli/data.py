"""``sislab data convert|synth|inspect|verify`` and ``sislab bench data``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def _storage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-override",
        default=None,
        help="S3-compatible endpoint (default: AWS_ENDPOINT_URL)",
    )
    parser.add_argument("--region", default=None, help="S3 region (default: AWS_REGION)")


def _storage(args: argparse.Namespace):
    from sislab.datasets.storage import StorageOptions

    return StorageOptions(args.endpoint_override, args.region)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``data`` with its subcommands ``convert``, ``synth``, ``inspect`` and ``verify``."""
    data = sub.add_parser("data", help="convert, generate, inspect and verify datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    conv = data_sub.add_parser("convert", help="official download layout -> Parquet shards")
    conv.add_argument(
        "--format",
        required=True,
        choices=["cityscapes", "ade20k", "coco-stuff", "celebamask-hq", "deepfashion"],
    )
    conv.add_argument("src", type=Path, help="root of the official download")
    conv.add_argument("dst", help="destination folder or s3://bucket/prefix")
    conv.add_argument(
        "--shard-mb",
        type=float,
        default=128.0,
        help="source MB per shard at most (splits are also cut "
        "every max(64, rows / 8) rows: 8 shards or more from 512 rows)",
    )
    conv.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (0: in this process)"
    )
    _storage_args(conv)
    conv.set_defaults(handler=_convert)

    synth = data_sub.add_parser("synth", help="write the procedural synthetic dataset")
    synth.add_argument("dst", help="destination folder or s3://bucket/prefix")
    synth.add_argument("--classes", type=int, required=True, help="number of classes K")
    synth.add_argument("--size", type=int, required=True, help="square image side")
    synth.add_argument("--num", type=int, required=True, help="train rows")
    synth.add_argument("--seed", type=int, required=True, help="seed of classes and layouts")
    synth.add_argument("--val", type=int, default=16, help="val rows")
    synth.add_argument("--variation", type=float, default=0.5, help="intra-class variation 0..1")
    synth.add_argument(
        "--shard-mb",
        type=float,
        default=128.0,
        help="payload MB per shard at most (splits are also cut "
        "every max(64, rows / 8) rows: 8 shards or more from 512 rows)",
    )
    _storage_args(synth)
    synth.set_defaults(handler=_synth)

    insp = data_sub.add_parser("inspect", help="classes, counts, pixel frequencies, sizes")
    insp.add_argument("uri")
    insp.add_argument("--max-rows", type=int, default=None, help="rows decoded per split")
    insp.add_argument("--json", action="store_true", help="print JSON")
    _storage_args(insp)
    insp.set_defaults(handler=_inspect)

    ver = data_sub.add_parser("verify", help="check shard sha256 and that every row decodes")
    ver.add_argument("uri")
    _storage_args(ver)
    ver.set_defaults(handler=_verify)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    """Add ``bench data URI --size S``."""
    bench = bench_sub.add_parser("data", help="Ray Data pipeline vs folder-of-PNGs DataLoader")
    bench.add_argument("uri", help="dataset folder, s3:// prefix or synthetic:// URI")
    bench.add_argument("--size", type=int, default=256, help="square output size")
    bench.add_argument("--split", default="train")
    bench.add_argument(
        "--epochs", type=int, default=2, help="steady epochs per side and round, after the cold one"
    )
    bench.add_argument("--rounds", type=int, default=2, help="rounds of both sides")
    bench.add_argument(
        "--cache",
        choices=["auto", "on", "off"],
        default="auto",
        help="dataset.cache of the pipeline",
    )
    bench.add_argument(
        "--endpoint-override", default=None, help="S3-compatible endpoint of an s3:// dataset"
    )
    bench.add_argument("--json", action="store_true", help="print JSON")
    bench.set_defaults(handler=_bench)


def _convert(args: argparse.Namespace) -> int:
    from sislab.datasets.converters import FORMATS, convert

    report = convert(
        FORMATS[args.format],
        args.src,
        args.dst,
        target_bytes=int(args.shard_mb * 2**20),
        workers=args.workers,
        progress=True,
        storage=_storage(args),
    )
    print(f"{report.dataset}: rows {report.rows}")
    print(f"shards written {report.shards_written}, reused {report.shards_reused}")
    if report.skipped:
        print(f"skipped {len(report.skipped)} files:")
        for path, reason in report.skipped:
            print(f"  {path}: {reason}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from sislab.datasets.storage import resolve
    from sislab.datasets.synthetic import parse_synthetic_uri
    from sislab.datasets.synthetic_writer import write_synthetic

    uri = (
        f"synthetic://shapes?size={args.size}&classes={args.classes}&num={args.num}"
        f"&val={args.val}&seed={args.seed}&variation={args.variation}"
    )
    manifest = write_synthetic(
        resolve(args.dst, _storage(args)), parse_synthetic_uri(uri), int(args.shard_mb * 2**20)
    )
    rows = {s: i.rows for s, i in manifest.splits.items()}
    print(f"wrote {args.dst}: {manifest.num_classes} classes, rows {rows}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from sislab.datasets.checks import inspect_dataset

    info = inspect_dataset(args.uri, _storage(args), args.max_rows)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    console = Console()
    console.print(
        f"[bold]{info['name']}[/]: {info['num_classes']} classes (one-hot), "
        f"don't-care id {info['dontcare_id']}, instance maps: {info['has_instance']}"
    )
    for split, s in info["splits"].items():
        console.print(
            f"[bold]{split}[/]: {s['rows']} rows in {s['shards']} shards, {s['bytes']} bytes; "
            f"image sizes {s['image_sizes']}"
        )
        table = Table("class", "pixel fraction")
        for name, freq in sorted(s["class_pixel_freq"].items(), key=lambda kv: -kv[1]):
            table.add_row(name, f"{freq:.4f}")
        console.print(table)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from sislab.datasets.checks import CORRUPT_ROW_FIX, CORRUPT_SHARD_FIX, verify_dataset

    result = verify_dataset(args.uri, _storage(args))
    print(f"checked {result.shards_checked} shards, {result.rows_checked} rows")
    for line in result.bad_shards:
        print(f"BAD SHARD {line}")
    for line in result.bad_rows:
        print(f"BAD ROW {line}")
    if result.bad_rows:
        print(f"  Fix: {CORRUPT_ROW_FIX}")
    if result.bad_shards:
        print(f"  Fix: {CORRUPT_SHARD_FIX}")
    return 0 if result.ok else 1


def _bench(args: argparse.Namespace) -> int:
    from sislab.datasets.bench import bench_data

    r = bench_data(
        args.uri,
        args.size,
        split=args.split,
        epochs=args.epochs,
        rounds=args.rounds,
        cache=args.cache,
        endpoint_override=args.endpoint_override,
    )
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"rows {r['rows']} at {r['size']}x{r['size']}, {r['cpus']} CPUs, "
        f"decoded rows cached: {'yes' if r['cached'] else 'no'}; "
        f"Ray Data's one-time start (the new local Ray's warm-up): {r['ray_data_start_s']:.2f} s"
    )
    print("round  side         cold samples/s  steady samples/s")
    for i, rnd in enumerate(r["rounds"], 1):
        for side, name in (("ray_data", "Ray Data"), ("dataloader", "DataLoader")):
            print(
                f"{i:>5}  {name:<11}  {rnd[f'{side}_cold_samples_per_s']:>14.1f}  "
                f"{rnd[f'{side}_steady_samples_per_s']:>16.1f}"
            )
        print(f"{i:>5}  ratio        {rnd['cold_ratio']:>14.2f}  {rnd['steady_ratio']:>16.2f}")
    print(
        f"median ratio (Ray Data / DataLoader): cold {r['cold_ratio']:.2f}, "
        f"steady {r['steady_ratio']:.2f}"
    )
    return 0
