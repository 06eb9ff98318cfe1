"""``sislab eval train-segmenter`` and ``sislab eval segment``: mIoU and pixel accuracy.

``train-segmenter`` trains sislab's builtin segmenter on a dataset (synthetic included) and
prints the val scores it reached; ``segment`` scores a dataset split's images, or a folder of
generated images named ``<row key>.png`` or ``<row>.png`` (0-based position in the split), with
the builtin segmenter or one of the papers' segmenters.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SEGMENTER_HELP = (
    "builtin:PATH (from train-segmenter), drn_d_105_cityscapes, upernet101_ade20k or "
    "deeplabv2_cocostuff164k (default: the spec's eval.segmenter, else the papers' segmenter of "
    "the dataset)"
)


def _size(text: str) -> tuple[int, int]:
    """``64`` or ``128x256`` (HxW)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not N or HxW") from None
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} is not N or HxW")
    return (parts[0], parts[-1])


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train-segmenter`` and ``segment`` to ``sislab eval``."""
    t = sub.add_parser(
        "train-segmenter",
        help="train the builtin segmenter on a dataset; prints its val mIoU/accuracy",
        description="Train sislab's builtin U-Net segmenter (in-process, no Ray) and write "
        "PATH (state dict) plus PATH's .json (metadata, val scores).",
    )
    t.add_argument("dataset", help="dataset URI: synthetic://..., a folder or s3://...")
    t.add_argument("--out", type=Path, required=True, help="state-dict file to write, e.g. seg.pt")
    t.add_argument("--split", default="train", help="split to train on (default train)")
    t.add_argument("--val-split", default="val", help="split to score on (default val)")
    t.add_argument("--epochs", type=int, default=30, help="passes over the split (default 30)")
    t.add_argument("--batch-size", type=int, default=16, help="samples per step (default 16)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    t.add_argument(
        "--size", type=_size, help="N or HxW the network runs at (default: the dataset's)"
    )
    t.add_argument("--width", type=int, default=16, help="U-Net channels at full resolution")
    t.add_argument("--device", default="cpu", help="torch device (default cpu)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.set_defaults(handler=_train)

    s = sub.add_parser(
        "segment",
        help="mIoU/accuracy of a dataset split's images or of a folder of generated images",
        description="Score images with a segmenter against the split's label maps. A folder "
        "holds generated images named <row key>.png or <row>.png (0-based row of the split); "
        "labels are resized (nearest) to the images' size.",
    )
    s.add_argument("source", help="dataset URI, or a folder of generated images (with --dataset)")
    s.add_argument("--segmenter", help=SEGMENTER_HELP)
    s.add_argument("--dataset", help="dataset URI of the labels when SOURCE is an image folder")
    s.add_argument("--split", default="val", help="split of the labels (default val)")
    s.add_argument("--size", type=_size, help="N or HxW to score a dataset's images at")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--device", default="cpu", help="torch device (default cpu)")
    s.add_argument("--spec", type=Path, help="take weights.* (and dataset, eval.segmenter) here")
    s.add_argument(
        "--weights",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="weights file of a registry name (as weights.paths.NAME)",
    )
    s.add_argument(
        "--sha256",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=HEX",
        help="sha256 of that file (as weights.sha256.NAME; required for the papers' files)",
    )
    s.add_argument("--allow-download", action="store_true", help="fetch missing weights")
    s.add_argument(
        "--allow-substitute",
        action="store_true",
        help="random weights when the file is missing (a pipeline check; scores meaningless)",
    )
    s.add_argument(
        "--present",
        choices=("union", "target"),
        default="union",
        help="classes in the mean: union (target or prediction, fyu/drn; default) or target",
    )
    s.add_argument("--per-class", action="store_true", help="also print every class's IoU")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(handler=_segment)


def _check_device(device: str) -> None:
    import torch

    from sislab.errors import SpecError

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError(f"--device {device}: no CUDA device here", fix="use --device cpu")


def _train(args: argparse.Namespace) -> int:
    from sislab.metrics.segmenters import train_segmenter

    _check_device(args.device)
    result = train_segmenter(
        args.dataset,
        args.out,
        split=args.split,
        val_split=args.val_split,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        seed=args.seed,
        size=args.size,
        width=args.width,
    )
    if args.json:
        print(json.dumps({**result.val.as_dict(), "path": str(result.path)}, indent=2))
        return 0
    print(f"segmenter  builtin:{result.path} (metadata {result.meta_path.name})")
    print(f"trained    {result.iterations} steps in {result.seconds:.1f} s")
    print(f"val mIoU   {result.val.miou:.4f} ({result.val.classes_counted} classes)")
    print(f"val acc    {result.val.accuracy:.4f}")
    return 0


def _is_dataset(source: str) -> bool:
    return "://" in source or (Path(source) / "dataset.json").is_file()


def _segment(args: argparse.Namespace) -> int:
    from sislab.errors import DataError, SpecError
    from sislab.metrics.segmenters import DEFAULT_FOR_DATASET, load_segmenter
    from sislab.metrics.segmenters.builtin import default_size
    from sislab.metrics.segmenters.data import dataset_info
    from sislab.metrics.segmenters.evaluate import score_folder, score_split

    _check_device(args.device)
    paths, sha256, allow_download, allow_substitute = {}, {}, args.allow_download, False
    dataset, segmenter_name = args.dataset, args.segmenter
    if args.spec:
        from sislab.spec.loader import load_spec

        spec = load_spec(args.spec)
        paths, sha256 = dict(spec.weights.paths), dict(spec.weights.sha256)
        allow_download = allow_download or spec.weights.allow_download
        allow_substitute = spec.eval.allow_substitute_weights
        dataset = dataset or spec.dataset.uri
        segmenter_name = segmenter_name or spec.eval.segmenter
    paths |= dict(args.weights)
    sha256 |= {k: v.lower() for k, v in args.sha256}
    allow_substitute = allow_substitute or args.allow_substitute

    folder = None if _is_dataset(args.source) else Path(args.source)
    if folder is None:
        dataset = args.source
    elif not folder.is_dir():
        raise DataError(
            f"{args.source} is neither a dataset (no dataset.json) nor a folder",
            fix="pass a dataset URI, or a folder of generated images with --dataset URI",
        )
    elif dataset is None:
        raise SpecError(
            f"{folder} holds images but no labels", fix="pass --dataset URI (or --spec)"
        )
    info = dataset_info(dataset)
    segmenter_name = segmenter_name or DEFAULT_FOR_DATASET.get(info.name)
    if segmenter_name is None:
        raise SpecError(
            f"no published segmenter for dataset {info.name!r}",
            fix="train one with `sislab eval train-segmenter` and pass --segmenter builtin:PATH",
        )
    segmenter = load_segmenter(
        segmenter_name,
        paths=paths,
        sha256=sha256,
        allow_download=allow_download,
        num_classes=info.num_classes,
        device=args.device,
        allow_substitute=allow_substitute,
    )
    if folder is None:
        size = args.size or default_size(info)
        report = score_split(segmenter, dataset, args.split, size, args.batch_size, args.present)
    else:
        report = score_folder(segmenter, folder, dataset, args.split, args.batch_size, args.present)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    _print_report(report, dataset, args.split, args.per_class)
    return 0


def _print_report(report, dataset: str, split: str, per_class: bool) -> None:
    s = report.scores
    for w in report.weights:
        origin = "random weights (substitute)" if w.substitute else f"sha256 {w.sha256[:16]}…"
        print(f"weights    {w.name}: {origin}")
    h, w = report.size
    print(f"segmenter  {report.segmenter}")
    print(
        f"scored     {report.rows} of {report.split_rows} rows of {dataset} [{split}] "
        f"({report.source}, {h}x{w})"
    )
    where = "in target or prediction" if s.present == "union" else "in target"
    print(f"mIoU       {s.miou:.4f} over {s.classes_counted} classes present {where}")
    print(f"accuracy   {s.accuracy:.4f} of {s.pixels} labelled pixels")
    if per_class:
        for k, iou in enumerate(s.per_class_iou):
            print(f"  class {k:3d}  {'-' if iou != iou else f'{iou:.4f}'}")
    if any(w.substitute for w in report.weights):
        print("warning    random weights stood in: these scores are not comparable")
