"""``sislab eval smis CHECKPOINT``: mCSD/mOCD of a GroupDNet checkpoint under ``smis-deepfashion``.

The preset pins what a training run cannot follow (the test split, 20 samples per label map and
class, 19 consecutive pairs, LPIPS AlexNet on up to 100 label maps), so the checkpoint is
evaluated here. The record of what was actually done is compared with the preset: the output
carries the id of that record, the preset's id, and every difference (a 64 px synthetic run
differs in resolution), so a score is never shown under a protocol it did not follow.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PRESET = "smis-deepfashion"
# MLflow keys and tags of the offline scores: apart from the run's in-loop eval/* metrics, which
# were computed under the run's own protocol id (sislab.protocol.id).
METRIC_PREFIX = f"offline/{PRESET}/"
TAG_PREFIX = f"sislab.offline.{PRESET}."


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval smis``."""
    p = sub.add_parser(
        "smis",
        help=f"mCSD/mOCD of a GroupDNet checkpoint under the {PRESET} protocol",
        description="Per label map of the split and per class in it, 20 images in which only "
        "that class's latent is redrawn; LPIPS (AlexNet) of 19 consecutive pairs inside the "
        "class (mCSD) and outside it (mOCD), averaged over classes (GroupDNet §4.3).",
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint folder (meta.json + state.pt)")
    p.add_argument("--spec", type=Path, help="trial spec (default: the one in meta.json)")
    p.add_argument("--split", help="split of the label maps (default: the preset's, test)")
    p.add_argument("--batch-size", type=int, default=16, help="LPIPS pairs per forward")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws")
    p.add_argument("--weights", help="local path or s3:// URI of torchvision's AlexNet file")
    p.add_argument(
        "--allow-download", action="store_true", help="fetch AlexNet from its canonical URL"
    )
    p.add_argument(
        "--allow-substitute-weights",
        action="store_true",
        help="random AlexNet when the file is missing (tagged; not comparable to anyone's)",
    )
    p.add_argument(
        "--strict", action="store_true", help="fail (exit 2) when the run differs from the preset"
    )
    p.add_argument("--run-id", help="log the scores to this MLflow run (e.g. the checkpoint's)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI for --run-id")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_smis)


def _class_generator(model, device, seed: int):
    """``(label [H, W], class_id, n) -> [n, 3, H, W]``: only ``class_id``'s latent redrawn."""
    import torch

    from sislab.models.semantic_input import semantic_input

    rng = torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def generate(label, class_id: int, n: int):
        semantics = semantic_input(label[None, None].to(device), None, model.geometry)
        z = model.generator.sample_latent(1, device, rng).repeat(n, 1, 1, 1, 1)
        z[:, class_id] = torch.randn(z[:, class_id].shape, device=device, generator=rng)
        return model.generator(semantics.expand(n, -1, -1, -1), z).float().clamp(-1, 1)

    return generate


def evaluate(args: argparse.Namespace) -> dict:
    """The scores and the protocol record of ``args.checkpoint`` (see the module docstring).

    Raises:
        CheckpointError: Not a checkpoint, or its method has no per-class latents.
        WeightsError: AlexNet missing (without ``--allow-substitute-weights``) or wrong sha256.
        DataError: Unknown split, or one without label maps.
    """
    import torch

    from sislab.errors import DataError
    from sislab.metrics.lpips_scores import load_lpips
    from sislab.metrics.protocol import (
        EvalProtocol,
        preset,
        preset_differences,
        protocol_id,
        with_weights,
    )
    from sislab.metrics.segmenters.data import iter_split
    from sislab.metrics.smis import smis_diversity
    from sislab.spec.loader import load_spec, spec_from_dict
    from sislab.trainers.applications import load_smis_model
    from sislab.trainers.checkpoint import read_meta

    pinned = preset(PRESET)
    meta = read_meta(args.checkpoint)
    spec = load_spec(args.spec) if args.spec else None
    model = load_smis_model(args.checkpoint, spec)
    spec = spec or spec_from_dict(meta.config)
    device = torch.device(args.device)
    model.generator.to(device)
    paths = dict(spec.weights.paths) | ({"alexnet": args.weights} if args.weights else {})
    lpips, info = load_lpips(
        net=pinned.lpips_net,
        paths=paths,
        allow_download=args.allow_download or spec.weights.allow_download,
        sha256=spec.weights.sha256,
        device=device,
        allow_substitute=args.allow_substitute_weights,
    )
    split = args.split or pinned.reference_split
    size = tuple(spec.dataset.image_size)
    labels: list[torch.Tensor] = []
    for batch in iter_split(spec.dataset.uri, split, size, batch_size=pinned.diversity_label_maps):
        labels += [torch.from_numpy(x.astype("int64")) for x in batch.labels]
        break  # the first diversity_label_maps rows, in split order
    if not labels:
        raise DataError(
            f"split {split!r} of {spec.dataset.uri} has no label maps",
            fix="pass --split with a split that has rows",
        )
    scores = smis_diversity(
        lpips,
        _class_generator(model, device, args.seed),
        labels,
        samples=pinned.diversity_samples,
        pairing=pinned.diversity_pairing,
        batch_size=args.batch_size,
    )
    record = with_weights(
        EvalProtocol(
            resolution=size,
            reference_split=split,
            lpips_net=pinned.lpips_net,
            diversity_label_maps=len(labels),
            diversity_samples=pinned.diversity_samples,
            diversity_pairing=pinned.diversity_pairing,
        ),
        lpips=info,
    )
    differences = preset_differences(record, PRESET)
    if not differences:
        record = record.model_copy(update={"name": PRESET, "description": pinned.description})
    return {
        "checkpoint": str(args.checkpoint),
        "method": meta.method,
        "iteration": meta.iteration,
        "preset": PRESET,
        "preset_id": protocol_id(pinned),
        "protocol_id": protocol_id(record),
        "follows_preset": not differences,
        "differences": differences,
        "substitutes": list(record.substitutes),
        "split": split,
        "label_maps": scores.label_maps,
        "samples": pinned.diversity_samples,
        "pairs": scores.pairs,
        "mcsd": scores.mcsd,
        "mocd": scores.mocd,
        "per_class": {str(c): {"mcsd": v[0], "mocd": v[1]} for c, v in scores.per_class.items()},
        "record": record.model_dump(mode="json"),
    }


def log_to_run(result: dict, run_id: str, tracking_uri: str | None) -> None:
    """Log the scores as ``offline/smis-deepfashion/{mcsd,mocd}`` at the checkpoint's iteration,
    and the record as ``sislab.offline.smis-deepfashion.*`` tags."""
    import mlflow

    from sislab.metrics.protocol import EvalProtocol, protocol_tags

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    for key in ("mcsd", "mocd"):
        client.log_metric(run_id, METRIC_PREFIX + key, result[key], step=result["iteration"])
    tags = protocol_tags(EvalProtocol.model_validate(result["record"]))
    tags["sislab.protocol.follows_preset"] = str(result["follows_preset"]).lower()
    for key, value in tags.items():
        client.set_tag(run_id, TAG_PREFIX + key.removeprefix("sislab."), value[:5000])


def _smis(args: argparse.Namespace) -> int:
    from sislab.errors import SpecError

    result = evaluate(args)
    if args.strict and not result["follows_preset"]:
        raise SpecError(
            f"{args.checkpoint} was not evaluated under {PRESET}: "
            + "; ".join(result["differences"]),
            fix="evaluate a checkpoint of the preset's dataset and resolution, or drop --strict",
        )
    if args.run_id:
        log_to_run(result, args.run_id, args.tracking_uri)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    follows = "follows the preset" if result["follows_preset"] else "differs from the preset"
    print(
        f"{PRESET} (id {result['preset_id']}): this evaluation {follows}, id {result['protocol_id']}"
    )
    for line in result["differences"]:
        print(f"  {line}")
    if result["substitutes"]:
        print(f"  substitute (random) weights: {', '.join(result['substitutes'])}")
    print(
        f"mCSD {result['mcsd']:.4g}  mOCD {result['mocd']:.4g}  ({result['label_maps']} label "
        f"maps x {result['pairs']} pairs per class, split {result['split']})"
    )
    return 0
