"""Confusion matrices and scores against hand-computed answers, don't-care pixels included."""

from __future__ import annotations

import math

import pytest
import torch

from sislab.metrics.segmentation import (
    ConfusionMeter,
    SegmentationScores,
    confusion_matrix,
    scores,
)

# 3 classes; 255 = don't care. Row-major 2x4 maps.
TARGET = torch.tensor([[0, 0, 1, 1], [2, 255, 255, 0]])
PRED = torch.tensor([[0, 1, 1, 1], [1, 2, 0, 0]])
# Counted pixels (target != 255): (0,0) (0,1) (1,1) (1,1) (2,1) (0,0)
EXPECTED = torch.tensor([[2, 1, 0], [0, 2, 0], [0, 1, 0]])


def test_confusion_matrix_by_hand() -> None:
    cm = confusion_matrix(PRED, TARGET, 3)
    assert cm.dtype == torch.int64
    assert torch.equal(cm, EXPECTED)


def test_scores_by_hand_union_convention() -> None:
    s = scores(EXPECTED)
    # IoU: class 0: 2/(3+2-2)=2/3, class 1: 2/(2+4-2)=1/2, class 2: 0/(1+0-0)=0 (union 1 > 0).
    assert s.per_class_iou == pytest.approx((2 / 3, 1 / 2, 0.0))
    assert s.miou == pytest.approx((2 / 3 + 1 / 2 + 0.0) / 3)
    assert s.accuracy == pytest.approx(4 / 6)
    assert (s.classes_counted, s.pixels) == (3, 6)


def test_class_absent_everywhere_is_not_counted() -> None:
    cm = confusion_matrix(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), 4)
    s = scores(cm)
    # classes 2 and 3 have an empty union: NaN and left out of the mean (fyu/drn nanmean).
    assert math.isnan(s.per_class_iou[2]) and math.isnan(s.per_class_iou[3])
    assert s.miou == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert s.classes_counted == 2


def test_target_convention_skips_classes_only_predicted() -> None:
    # class 2 is predicted once but never in the target.
    cm = confusion_matrix(torch.tensor([0, 2, 1, 1]), torch.tensor([0, 0, 1, 1]), 3)
    union, target = scores(cm, "union"), scores(cm, "target")
    assert union.miou == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert target.miou == pytest.approx((1 / 2 + 1) / 2)
    assert target.classes_counted == 2


def test_batches_accumulate_to_the_whole() -> None:
    meter = ConfusionMeter(3)
    meter.update(PRED[0], TARGET[0])
    meter.update(PRED[1], TARGET[1])
    assert torch.equal(meter.matrix, EXPECTED)
    assert meter.compute() == scores(EXPECTED)
    meter.all_reduce()  # no process group: unchanged
    assert torch.equal(meter.matrix, EXPECTED)


def test_ranks_sum_like_one_process(tmp_path) -> None:
    """Two gloo ranks each add half the batch; the all-reduced matrix is the whole one."""
    import torch.multiprocessing as mp

    mp.spawn(_rank, args=(2, str(tmp_path / "store")), nprocs=2, join=True)


def _rank(rank: int, world: int, store: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        meter = ConfusionMeter(3)
        meter.update(PRED[rank], TARGET[rank])
        meter.all_reduce()
        assert torch.equal(meter.matrix, EXPECTED)
    finally:
        dist.destroy_process_group()


def test_everything_ignored_gives_nan() -> None:
    s = scores(confusion_matrix(torch.tensor([1, 2]), torch.tensor([255, 255]), 3))
    assert math.isnan(s.miou) and math.isnan(s.accuracy) and s.pixels == 0
    assert s.as_dict()["miou"] is None


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        ([0, 3], [0, 1], "prediction ids"),
        ([0, 1], [0, 7], "target ids"),
        ([0, 1], [-1, 1], "target ids"),
    ],
)
def test_ids_out_of_range_are_errors(pred, target, message) -> None:
    with pytest.raises(ValueError, match=message):
        confusion_matrix(torch.tensor(pred), torch.tensor(target), 3)


def test_ignore_index_cannot_be_a_class() -> None:
    with pytest.raises(ValueError, match="valid class id"):
        confusion_matrix(torch.tensor([0]), torch.tensor([0]), 3, ignore_index=2)


def test_scores_round_trip_as_dict() -> None:
    d = scores(EXPECTED).as_dict()
    assert d["miou"] == pytest.approx(7 / 18) and d["present"] == "union"
    assert isinstance(scores(EXPECTED), SegmentationScores)
