"""Segmentation scores of generated images: confusion matrices, mIoU and pixel accuracy.

A confusion matrix ``C`` is int64 ``(K, K)`` with ``C[t, p]`` the number of pixels of target class
``t`` predicted as ``p``; pixels whose target is the ignore (don't-care) id are not counted. Sums
of confusion matrices are exact, so batches, val splits and ranks combine by adding them (one
``all_reduce`` of ``K*K`` integers) and the scores are computed once at the end.

Conventions, matching the papers' tools:

* per-class IoU ``C[k,k] / (row_k + col_k - C[k,k])`` (true positives over the union);
* mIoU averages the classes whose union is non-zero, i.e. classes present in the target or in the
  prediction (fyu/drn ``segment.py``: ``nanmean`` of ``per_class_iu``, used by SPADE issue #39 and
  the follow-up papers). ``present="target"`` averages only classes present in the target (the
  ``valid = hist.sum(1) > 0`` variant of the deeplab-pytorch copy in the VASIS evaluation scripts);
* pixel accuracy is ``trace(C) / sum(C)``, don't-care pixels excluded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

IGNORE_INDEX = 255
Present = Literal["union", "target"]


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Confusion matrix of one batch.

    Args:
        pred: Predicted class ids, any integer shape.
        target: Target class ids, same shape; ``ignore_index`` marks don't-care pixels.
        num_classes: K; valid ids are ``0..K-1``.
        ignore_index: Target id that is not counted (never a valid class id).

    Returns:
        int64 ``(K, K)`` on the device of ``target``, rows = target, columns = prediction.

    Raises:
        ValueError: Shapes differ, or an id outside ``0..K-1`` (other than a target
            ``ignore_index``); a label mapping bug must not vanish into a dropped pixel.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if 0 <= ignore_index < num_classes:
        raise ValueError(f"ignore_index {ignore_index} is a valid class id (K={num_classes})")
    pred = pred.reshape(-1).to(device=target.device, dtype=torch.int64)
    target = target.reshape(-1).to(torch.int64)
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    for name, ids in (("target", target), ("prediction", pred)):
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
            raise ValueError(
                f"{name} ids span {int(ids.min())}..{int(ids.max())}, outside 0..{num_classes - 1}"
            )
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one confusion matrix.

    Attributes:
        miou: Mean IoU over the counted classes (NaN when no pixel was labelled).
        accuracy: Pixel accuracy (NaN when no pixel was labelled).
        per_class_iou: IoU of every class; NaN where the class was not counted.
        classes_counted: How many classes the mean runs over.
        pixels: Labelled pixels scored.
        present: Which classes count (``union`` or ``target``).
    """

    miou: float
    accuracy: float
    per_class_iou: tuple[float, ...]
    classes_counted: int
    pixels: int
    present: Present = "union"

    def as_dict(self) -> dict[str, float | int | str | list[float | None]]:
        """JSON-friendly form (NaN as ``None``)."""

        def clean(v: float) -> float | None:
            return None if math.isnan(v) else v

        return {
            "miou": clean(self.miou),
            "accuracy": clean(self.accuracy),
            "per_class_iou": [clean(v) for v in self.per_class_iou],
            "classes_counted": self.classes_counted,
            "pixels": self.pixels,
            "present": self.present,
        }


def scores(confusion: torch.Tensor, present: Present = "union") -> SegmentationScores:
    """mIoU, pixel accuracy and per-class IoU of a (summed) confusion matrix.

    Args:
        confusion: int64 ``(K, K)``, rows = target, columns = prediction.
        present: ``union`` (default; fyu/drn and SPADE protocol): classes with a non-zero union;
            ``target``: classes with at least one target pixel.
    """
    c = confusion.detach().to("cpu", torch.float64)
    tp = c.diagonal()
    in_target, in_pred = c.sum(1), c.sum(0)
    union = in_target + in_pred - tp
    counted = union > 0 if present == "union" else in_target > 0
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))
    iou = torch.where(counted, iou, torch.full_like(iou, math.nan))
    total = float(c.sum())
    n = int(counted.sum())
    return SegmentationScores(
        miou=float(iou[counted].mean()) if n else math.nan,
        accuracy=float(tp.sum()) / total if total else math.nan,
        per_class_iou=tuple(float(v) for v in iou),
        classes_counted=n,
        pixels=int(total),
        present=present,
    )


def all_reduce_confusion(confusion: torch.Tensor) -> torch.Tensor:
    """Sum of every rank's confusion matrix (itself when torch.distributed is not running)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return confusion
    total = confusion.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


class ConfusionMeter:
    """Accumulates confusion matrices over batches (and ranks) and scores them at the end.

    Args:
        num_classes: K of the label space the matrix counts in.
        ignore_index: Target id that is not counted.
        device: Where the matrix lives (that of the predictions avoids copies).
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        device: torch.device | str = "cpu",
    ) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch of predicted and target ids."""
        target = target.to(self.matrix.device)
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def all_reduce(self) -> None:
        """Replace the local matrix by the sum over ranks (call once, on every rank)."""
        self.matrix = all_reduce_confusion(self.matrix)

    def compute(self, present: Present = "union") -> SegmentationScores:
        """Scores of everything added so far."""
        return scores(self.matrix, present)
