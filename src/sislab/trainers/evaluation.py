"""Evaluation during training: the val split generated on every rank, metrics gathered on rank 0.

Each rank generates its share of the evaluated val rows (row ``i`` on rank ``i % world_size``),
extracts Inception features, LPIPS sums and segmentation confusion matrices locally, and one
``all_gather_object`` plus one ``all_reduce`` bring them to rank 0, which computes FID/KID and
the rest. Generation uses its own seeded generator state, so evaluating never changes the
training run's random stream (a resumed run draws the same noise as an uninterrupted one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from sislab.metrics.provenance import WeightsInfo
from sislab.spec.models import EVAL_METRIC_MODES, EvalSpec, WeightsSpec
from sislab.trainers.batches import EpochSource
from sislab.trainers.context import TrainContext, sum_over_ranks

logger = logging.getLogger(__name__)

_INCEPTION_METRICS = {"fid", "fid_train", "kid"}
_LPIPS_METRICS = {"lpips", "lpips_diversity"}
_SEGMENTATION_METRICS = {"miou", "accuracy"}
_SMIS_METRICS = {"mcsd", "mocd"}
# Samples per (val layout, class) for mcsd/mocd during training: one pair, like lpips_diversity;
# the paper's 20 (19 consecutive pairs) on the test split is `sislab eval smis`.
SMIS_TRAINING_SAMPLES = 2


def improves(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` of ``metric`` beats ``best`` in the metric's direction."""
    if best is None or not np.isfinite(best):
        return bool(np.isfinite(value))
    if EVAL_METRIC_MODES[metric] == "min":
        return value < best
    return value > best


@dataclass
class EvalNetworks:
    """The networks an evaluation needs, with where their weights came from."""

    inception: torch.nn.Module | None = None
    lpips: torch.nn.Module | None = None
    segmenter: object | None = None  # sislab.metrics.segmenters.base.Segmenter
    weights: dict[str, WeightsInfo] = field(default_factory=dict)


def load_networks(
    cfg: EvalSpec, weights: WeightsSpec, num_classes: int, device: torch.device
) -> EvalNetworks:
    """Load (hash-checked) the networks ``cfg.metrics`` need, on ``device``."""
    wanted = set(cfg.metrics)
    nets = EvalNetworks()
    common = {
        "paths": weights.paths,
        "allow_download": weights.allow_download,
        "sha256": weights.sha256,
        "device": device,
        "allow_substitute": cfg.allow_substitute_weights,
    }
    if wanted & _INCEPTION_METRICS:
        from sislab.metrics.inception import load_fid_inception

        nets.inception, nets.weights["inception"] = load_fid_inception(
            source=cfg.inception, **common
        )
    if wanted & (_LPIPS_METRICS | _SMIS_METRICS):
        from sislab.metrics.lpips_scores import load_lpips

        nets.lpips, nets.weights["lpips"] = load_lpips(net=cfg.lpips_net, **common)
    if wanted & _SEGMENTATION_METRICS:
        from sislab.metrics.segmenters import load_segmenter

        nets.segmenter = load_segmenter(
            cfg.segmenter,
            num_classes=num_classes,
            paths=weights.paths,
            allow_download=weights.allow_download,
            sha256=weights.sha256,
            device=device,
            allow_substitute=cfg.allow_substitute_weights,
        )
        for i, info in enumerate(nets.segmenter.weights):
            nets.weights[f"segmenter{i or ''}"] = info
    return nets


def substitutes(nets: EvalNetworks) -> list[str]:
    """Names of the networks running on substitute (random) weights."""
    return sorted(k for k, info in nets.weights.items() if info.substitute)


class Evaluator:
    """Computes ``eval.metrics`` of a procedure's generator on the val split.

    Args:
        cfg: The spec's ``eval`` section.
        networks: Networks from ``load_networks``.
        seed: Seed of the evaluation noise (the same at every evaluation).
        train_reference: ``(mu, sigma)`` of the train split for ``fid_train``, on rank 0.
        protocol: The run's ``EvalProtocol`` record, stamped on the run as tags.
    """

    def __init__(
        self,
        cfg: EvalSpec,
        networks: EvalNetworks,
        seed: int,
        train_reference: tuple[np.ndarray, np.ndarray] | None = None,
        protocol=None,
    ) -> None:
        self.cfg = cfg
        self.nets = networks
        self.seed = seed
        self.train_reference = train_reference
        self.protocol = protocol
        self._real: np.ndarray | None = None  # val features (rank 0): the same rows every time
        # Every rank sends its real-image features once; without this flag the ranks other than
        # 0 (which never hold ``_real``) would extract them again at every evaluation.
        self._real_sent = False
        self.images_evaluated = 0

    @property
    def tags(self) -> dict[str, str]:
        """MLflow tags of the run: the protocol record, its id and any substitute weights."""
        if self.protocol is None:
            return {}
        from sislab.metrics.protocol import offline_tags, protocol_tags

        return protocol_tags(self.protocol) | offline_tags(self.cfg.protocol)

    @property
    def wanted(self) -> set[str]:
        """The metrics this evaluator computes."""
        return set(self.cfg.metrics)

    @torch.no_grad()
    def evaluate(self, procedure, source: EpochSource, ctx: TrainContext) -> dict[str, float]:
        """Evaluate on every rank (collective); returns the metrics on rank 0, ``{}`` elsewhere."""
        fake_feats, real_feats = [], []
        sums = torch.zeros(3, dtype=torch.float64)  # lpips sum, diversity sum, images
        meter = None
        if self.wanted & _SEGMENTATION_METRICS:
            from sislab.metrics.segmentation import ConfusionMeter

            seg = self.nets.segmenter
            meter = ConfusionMeter(seg.num_classes, seg.ignore_index, ctx.device)
        smis = None
        if self.wanted & _SMIS_METRICS:
            smis = torch.zeros(4, procedure.geometry.num_classes, dtype=torch.float64)
        need_real = not self._real_sent and bool(self.wanted & {"fid", "kid"})
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            torch.manual_seed(self.seed + 7_919 * ctx.rank)
            for batch in source.eval_batches(
                self.cfg.num_samples, self.cfg.batch_size, ctx.rank, ctx.world_size
            ):
                batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
                fake = procedure.sample(batch).clamp(-1, 1)
                real = batch["image"]
                if self.nets.inception is not None:
                    fake_feats.append(self.nets.inception(fake).double().cpu())
                    if need_real:
                        real_feats.append(self.nets.inception(real).double().cpu())
                if "lpips" in self.wanted:
                    sums[0] += float(self.nets.lpips(fake, real).sum())
                if "lpips_diversity" in self.wanted:
                    other = procedure.sample(batch).clamp(-1, 1)
                    sums[1] += float(self.nets.lpips(fake, other).sum())
                sums[2] += fake.shape[0]
                if meter is not None:
                    seg = self.nets.segmenter
                    meter.update(seg.predict(fake), seg.map_labels(batch["label"][:, 0]))
                if smis is not None:
                    smis += self._smis_totals(procedure, batch)
        gathered = _gather_to_main(
            (
                torch.cat(fake_feats).numpy() if fake_feats else None,
                torch.cat(real_feats).numpy() if real_feats else None,
            ),
            ctx,
        )
        self._real_sent = self._real_sent or need_real
        sums = sum_over_ranks(sums, ctx)
        if meter is not None:
            meter.all_reduce()
        if smis is not None:
            smis = sum_over_ranks(smis, ctx)
        if not ctx.is_main:
            return {}
        return self._metrics(gathered, sums, meter) | self._smis_metrics(smis)

    def _smis_totals(self, procedure, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """mCSD/mOCD sums of a batch's layouts (``metrics.smis.class_totals``)."""
        from sislab.metrics.smis import class_totals

        num_classes = procedure.geometry.num_classes
        totals = torch.zeros(4, num_classes, dtype=torch.float64)
        for i in range(batch["label"].shape[0]):
            row = {k: v[i : i + 1] for k, v in batch.items()}
            totals += class_totals(
                self.nets.lpips,
                lambda _label, class_id, n, row=row: procedure.sample_class(row, class_id, n),
                row["label"][0, 0].cpu(),
                num_classes,
                samples=SMIS_TRAINING_SAMPLES,
                batch_size=self.cfg.batch_size,
            )
        return totals

    def _smis_metrics(self, totals: torch.Tensor | None) -> dict[str, float]:
        if totals is None:
            return {}
        from sislab.metrics.smis import diversity_from_totals

        scores = diversity_from_totals(totals)
        return {k: getattr(scores, k) for k in ("mcsd", "mocd") if k in self.wanted}

    def _metrics(self, gathered, sums: torch.Tensor, meter) -> dict[str, float]:
        from sislab.metrics import fid

        images = int(sums[2])
        self.images_evaluated = images
        out: dict[str, float] = {}
        fake = _concat([g[0] for g in gathered])
        if self._real is None and gathered[0][1] is not None:
            self._real = _concat([g[1] for g in gathered])
        if fake is not None and images > 1:
            if "fid" in self.wanted:
                out["fid"] = fid.fid_from_features(fake, self._real)
            if "kid" in self.wanted:
                out["kid"], out["kid_std"] = fid.kernel_inception_distance(
                    fake,
                    self._real,
                    num_subsets=self.cfg.kid_subsets,
                    subset_size=self.cfg.kid_subset_size,
                    seed=self.seed,
                )
                if self.cfg.kid_subset_size >= min(len(fake), len(self._real)):
                    # Every subset is the whole sample: KID is one estimate, its std only
                    # floating-point noise (~1e-16); not logged.
                    del out["kid_std"]
            if "fid_train" in self.wanted and self.train_reference is not None:
                out["fid_train"] = fid.frechet_distance_to_statistics(fake, *self.train_reference)
        if "lpips" in self.wanted:
            out["lpips"] = float(sums[0] / max(images, 1))
        if "lpips_diversity" in self.wanted:
            out["lpips_diversity"] = float(sums[1] / max(images, 1))
        if meter is not None:
            scores = meter.compute()
            out["miou"], out["accuracy"] = float(scores.miou), float(scores.accuracy)
        return {k: float(v) for k, v in out.items()}


def _concat(parts: list[np.ndarray | None]) -> np.ndarray | None:
    arrays = [p for p in parts if p is not None and len(p)]
    return np.concatenate(arrays) if arrays else None


def _gather_to_main(obj, ctx: TrainContext) -> list:
    """Every rank's ``obj`` on every rank, in rank order (just ``[obj]`` without a process group)."""
    if ctx.world_size == 1 or not dist.is_initialized():
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def run_protocol(cfg: EvalSpec, nets: EvalNetworks, image_size: tuple[int, int], val_rows: int):
    """The protocol record of this run's evaluation, from its settings and loaded weights."""
    from sislab.metrics.protocol import EvalProtocol, with_weights

    evaluated = val_rows if cfg.num_samples is None else min(cfg.num_samples, val_rows)
    wanted = set(cfg.metrics)
    seg = nets.segmenter
    # Settings of metrics the run does not compute stay at the record's defaults, so that they
    # neither split protocol ids nor fail a preset check.
    kid = {"kid_subsets": cfg.kid_subsets, "kid_subset_size": cfg.kid_subset_size}
    record = EvalProtocol(
        resolution=tuple(image_size),
        inception_weights=cfg.inception,
        # fid is FID-v (val), fid_train FID-t (train): the record names the splits computed.
        reference_split="+".join(
            split for split, m in (("val", "fid"), ("train", "fid_train")) if m in wanted
        )
        or "val",
        reference_count=evaluated,
        num_generated=evaluated,
        **(kid if "kid" in wanted else {}),
        segmenter=_segmenter_kind(cfg.segmenter) if seg is not None else None,
        label_mapping=seg.label_mapping if seg is not None else None,
        ignore_index=seg.ignore_index if seg is not None else None,
        lpips_net=cfg.lpips_net if wanted & (_LPIPS_METRICS | _SMIS_METRICS) else None,
        diversity_label_maps=evaluated if wanted & {"lpips_diversity", *_SMIS_METRICS} else None,
        diversity_samples=2 if wanted & {"lpips_diversity", *_SMIS_METRICS} else None,
        diversity_pairing="consecutive" if wanted & _SMIS_METRICS else None,
    )
    return with_weights(
        record,
        inception=nets.weights.get("inception"),
        segmenter=seg.weights if seg is not None else (),
        lpips=nets.weights.get("lpips"),
    )


def _segmenter_kind(name: str | None) -> str | None:
    # A builtin segmenter's path differs per machine; its sha256 already pins the bytes.
    return "builtin" if name and name.startswith("builtin:") else name


def check_protocol(record, preset_name: str) -> None:
    """Refuse a run whose evaluation differs from the named protocol it claims to follow.

    Only what the preset pins is compared: fields it leaves open (None, empty sha256) and its
    dataset name (the run's dataset is the spec's business) are not.

    Raises:
        SpecError: The differing fields, each with the preset's and the run's value.
    """
    from sislab.errors import SpecError
    from sislab.metrics.protocol import OFFLINE_PRESETS, preset_differences

    if preset_name in OFFLINE_PRESETS:  # satisfied by the offline command; see offline_tags
        return
    differ = preset_differences(record, preset_name)
    if differ:
        raise SpecError(
            f"eval.protocol {preset_name!r} does not match this run's evaluation: "
            + "; ".join(differ),
            fix="change the eval settings (eval.num_samples, eval.segmenter, eval.inception, "
            "...) or the dataset to match, or drop eval.protocol",
        )
