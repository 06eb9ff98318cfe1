"""mCSD and mOCD, the SMIS diversity metrics of GroupDNet (Zhu et al., CVPR 2020, §4.3, Eq. 7).

For a label map and a class c in it, n images are generated where only class c's latent code
varies. ``L_c`` is the LPIPS between sampled pairs inside c's region and ``L_!c`` the LPIPS of the
same pairs in the region of every other class; mCSD and mOCD average them over the classes. A
model good at SMIS has a high mCSD (c changes) and a low mOCD (nothing else does).

The paper's "n = 100, m = 19, following BicycleGAN and MUNIT" reads, in those papers, as 100 input
label maps with 19 pairs of outputs each; sislab takes the label maps from the caller and, per
(label map, class), ``samples`` images paired consecutively (20 samples -> 19 pairs). Regions are
weighted per LPIPS layer and normalised by their area (``lpips_scores.region_lpips``). The
official code publishes no script for these metrics, so this is the paper's text made concrete.

The model enters only through ``generate``, so this module knows no network code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from sislab.metrics.lpips_scores import DEFAULT_BATCH, Pairing, region_lpips, sample_pairs

# (label [H, W] int64, class id, n) -> [n, 3, H, W] in [-1, 1], only that class's latent resampled
ClassGenerator = Callable[[torch.Tensor, int, int], torch.Tensor]


@dataclass(frozen=True)
class SmisDiversity:
    """The SMIS diversity of a model.

    Args:
        mcsd: Mean over classes of ``L_c`` (LPIPS inside the resampled class).
        mocd: Mean over classes of ``L_!c`` (LPIPS in all other classes, same pairs).
        per_class: Class id -> ``(L_c, L_!c)``; ``L_!c`` is NaN for a class that filled every
            label map it appeared in.
        label_maps: Label maps used.
        pairs: LPIPS pairs per (label map, class).
    """

    mcsd: float
    mocd: float
    per_class: dict[int, tuple[float, float]] = field(default_factory=dict)
    label_maps: int = 0
    pairs: int = 0


class _Mean:
    """A running mean that ignores NaN (an empty region)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, values: torch.Tensor) -> None:
        finite = values[~values.isnan()]
        self.total += float(finite.sum())
        self.count += finite.numel()

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else float("nan")


def _nanmean(values: Iterable[float]) -> float:
    kept = [v for v in values if v == v]
    return sum(kept) / len(kept) if kept else float("nan")


def smis_diversity(
    model: nn.Module,
    generate: ClassGenerator,
    labels: Iterable[torch.Tensor],
    samples: int = 20,
    pairing: Pairing = "consecutive",
    classes: Iterable[int] | None = None,
    ignore_index: int | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> SmisDiversity:
    """mCSD and mOCD of a generator over label maps.

    Args:
        model: LPIPS from ``lpips_scores.load_lpips`` (the paper: AlexNet).
        generate: ``(label, class_id, n) -> images``: n samples of one label map in which only
            ``class_id``'s latent changes between samples.
        labels: Label maps ``[H, W]`` (int64 class ids) at the generated resolution.
        samples: Images per (label map, class).
        pairing: ``consecutive`` (samples - 1 pairs) or ``all`` (``lpips_scores.sample_pairs``).
        classes: Classes to evaluate (default: every class present, ``ignore_index`` excluded).
        ignore_index: The don't-care id: never resampled, and outside every region.
        batch_size: Pairs per LPIPS forward.

    Returns:
        The metrics; classes absent from every label map do not enter the means.
    """
    wanted = None if classes is None else set(classes)
    first, second = sample_pairs(samples, pairing)
    inside: dict[int, _Mean] = {}
    outside: dict[int, _Mean] = {}
    count = 0
    for label in labels:
        count += 1
        valid = label != (-1 if ignore_index is None else ignore_index)  # ids are never < 0
        present = [int(c) for c in torch.unique(label[valid])]
        for class_id in present:
            if wanted is not None and class_id not in wanted:
                continue
            images = generate(label, class_id, samples)
            region = label == class_id
            regions = torch.stack([region, valid & ~region])
            scores = region_lpips(model, images[first], images[second], regions, batch_size)
            inside.setdefault(class_id, _Mean()).add(scores[:, 0])
            outside.setdefault(class_id, _Mean()).add(scores[:, 1])
    per_class = {c: (inside[c].value, outside[c].value) for c in sorted(inside)}
    return SmisDiversity(
        mcsd=_nanmean(v[0] for v in per_class.values()),
        mocd=_nanmean(v[1] for v in per_class.values()),
        per_class=per_class,
        label_maps=count,
        pairs=len(first),
    )


# Rows of ``class_totals``: sums and counts, so that ranks can add them before the means.
INSIDE_SUM, INSIDE_COUNT, OUTSIDE_SUM, OUTSIDE_COUNT = range(4)


def class_totals(
    model: nn.Module,
    generate: ClassGenerator,
    label: torch.Tensor,
    num_classes: int,
    samples: int = 2,
    pairing: Pairing = "consecutive",
    ignore_index: int | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> torch.Tensor:
    """Per-class LPIPS sums and pair counts of one label map, ``[4, num_classes]`` float64.

    The same computation as ``smis_diversity`` for one label map, kept as sums (rows
    ``INSIDE_SUM``, ``INSIDE_COUNT``, ``OUTSIDE_SUM``, ``OUTSIDE_COUNT``) so that several
    processes' totals can be added and turned into metrics once (``diversity_from_totals``).

    Args:
        model: LPIPS from ``lpips_scores.load_lpips``.
        generate: As in ``smis_diversity``.
        label: ``[H, W]`` int64 class ids.
        num_classes: Columns of the result (class ids are ``0..num_classes-1``).
        samples: Images per class.
        pairing: See ``lpips_scores.sample_pairs``.
        ignore_index: The don't-care id, never resampled.
        batch_size: Pairs per LPIPS forward.
    """
    totals = torch.zeros(4, num_classes, dtype=torch.float64)
    first, second = sample_pairs(samples, pairing)
    valid = label != (-1 if ignore_index is None else ignore_index)
    for class_id in (int(c) for c in torch.unique(label[valid])):
        images = generate(label, class_id, samples)
        region = label == class_id
        scores = region_lpips(
            model, images[first], images[second], torch.stack([region, valid & ~region]), batch_size
        ).double()
        for row, column in ((INSIDE_SUM, 0), (OUTSIDE_SUM, 1)):
            finite = scores[:, column][~scores[:, column].isnan()]
            totals[row, class_id] += finite.sum()
            totals[row + 1, class_id] += finite.numel()
    return totals


def diversity_from_totals(
    totals: torch.Tensor, label_maps: int = 0, pairs: int = 0
) -> SmisDiversity:
    """mCSD and mOCD from summed ``class_totals``: per-class means, then the mean over classes.

    Classes with no pair (absent everywhere, or no region outside them) do not enter a mean.
    """

    def means(sums: torch.Tensor, counts: torch.Tensor) -> list[float]:
        return [float(s / c) if c else float("nan") for s, c in zip(sums, counts, strict=True)]

    inside = means(totals[INSIDE_SUM], totals[INSIDE_COUNT])
    outside = means(totals[OUTSIDE_SUM], totals[OUTSIDE_COUNT])
    per_class = {
        c: (inside[c], outside[c]) for c in range(totals.shape[1]) if totals[INSIDE_COUNT, c]
    }
    return SmisDiversity(
        mcsd=_nanmean(v[0] for v in per_class.values()),
        mocd=_nanmean(v[1] for v in per_class.values()),
        per_class=per_class,
        label_maps=label_maps,
        pairs=pairs,
    )
