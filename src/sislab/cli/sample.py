"""``sislab sample CHECKPOINT_DIR --mode ...``: GroupDNet's per-class applications as image grids."""

from __future__ import annotations

import argparse
from pathlib import Path

MODES = ("multimodal", "mixture", "manipulate", "morph")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sample`` command."""
    p = sub.add_parser("sample", help="per-class sampling from a GroupDNet checkpoint")
    p.add_argument("checkpoint", type=Path, help="checkpoint folder (meta.json + state.pt)")
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--class", dest="class_id", type=int, required=True, help="class to control")
    p.add_argument("--out", type=Path, required=True, help="output PNG")
    p.add_argument("--spec", type=Path, help="trial spec (default: the one in meta.json)")
    p.add_argument("--label", type=Path, help="label PNG (class ids); default: dataset sample 0")
    p.add_argument("--image", type=Path, help="image PNG; default: dataset sample 0")
    p.add_argument("--source-label", type=Path, help="mixture: source label (default sample 1)")
    p.add_argument("--source-image", type=Path, help="mixture/morph: second image (sample 1)")
    p.add_argument("--edit-label", type=Path, help="manipulate: edited label PNG")
    p.add_argument("--num-samples", type=int, default=4, help="multimodal: images to draw")
    p.add_argument("--steps", type=int, default=5, help="morph: interpolation steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mlflow-run", help="log the grid to this MLflow run")
    p.add_argument("--tracking-uri", help="MLflow tracking URI for --mlflow-run")
    p.set_defaults(handler=_sample)


def _read_label(path: Path):
    import numpy as np
    import torch
    from PIL import Image

    return torch.from_numpy(np.asarray(Image.open(path)).astype(np.int64))[None, None]


def _read_image(path: Path):
    import numpy as np
    import torch
    from PIL import Image

    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    return (torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1).clamp(-1, 1)


def _dataset_rows(spec):
    from sislab.errors import SpecError
    from sislab.trainers import build

    if not spec.dataset.uri.startswith("synthetic://"):
        raise SpecError(
            "no --label/--image given and the run's dataset is not synthetic",
            fix="pass --label and --image (and --source-image for mixture/morph)",
        )
    batch = build.synthetic_source(spec, 0, 1).grid_batch(2)
    rows = [
        (batch["label"][i : i + 1], batch["image"][i : i + 1]) for i in range(len(batch["label"]))
    ]
    return rows + rows[:1] if len(rows) == 1 else rows


def _sample(args: argparse.Namespace) -> int:
    import torch

    from sislab.spec.loader import load_spec, spec_from_dict
    from sislab.trainers import applications as apps
    from sislab.trainers.checkpoint import read_meta

    spec = load_spec(args.spec) if args.spec else None
    model = apps.load_smis_model(args.checkpoint, spec)
    if spec is None:
        spec = spec_from_dict(read_meta(args.checkpoint).config)
    rows = None if (args.label and args.image) else _dataset_rows(spec)
    label = _read_label(args.label) if args.label else rows[0][0]
    image = _read_image(args.image) if args.image else rows[0][1]
    source_label = _read_label(args.source_label) if args.source_label else None
    source_image = _read_image(args.source_image) if args.source_image else None
    if source_image is None and rows is not None:
        source_label, source_image = rows[1]
    source_label = label if source_label is None else source_label
    torch.manual_seed(args.seed)
    if args.mode == "multimodal":
        images = apps.multimodal(model, label, args.class_id, args.num_samples, args.seed)
    elif args.mode == "mixture":
        images = apps.appearance_mixture(
            model, label, image, source_label, source_image, args.class_id
        )
    elif args.mode == "manipulate":
        edited = _read_label(args.edit_label) if args.edit_label else _swap(label, args.class_id)
        images = apps.manipulate(model, label, image, edited)
    else:
        images = apps.morph(model, label, image, source_image, args.class_id, args.steps)
    path = apps.write_row(args.out, label, images, model.geometry.num_classes)
    if args.mlflow_run:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=args.tracking_uri)
        client.log_artifact(args.mlflow_run, str(path), artifact_path="smis")
    print(apps.describe(path, args.mode, args.class_id))
    return 0


def _swap(label, class_id: int):
    """Default edit: the left half of the map becomes ``class_id`` (a visible manipulation)."""
    edited = label.clone()
    edited[..., : label.shape[-1] // 2] = class_id
    return edited
