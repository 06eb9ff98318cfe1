import torch

from sislab.models.losses.oasis import (
    class_balance_weights,
    labelmix_images,
    labelmix_loss,
    labelmix_mask,
    n1_cross_entropy,
)


def test_class_balance_weights_follow_oasis_formula():
    classes = torch.tensor([[[0, 0, 0, 1]]])
    w = class_balance_weights(classes, 3, None)
    # numel 4, K = 2: class 0 -> 4 / (2 * 3), class 1 -> 4 / (2 * 1).
    assert torch.allclose(w, torch.tensor([[[2 / 3, 2 / 3, 2 / 3, 2.0]]]))
    assert class_balance_weights(classes, 3, ignore_class=1)[0, 0, 3] == 0


def test_n1_targets_shift_classes_by_one_and_fake_is_zero():
    classes = torch.tensor([[[1]]])
    logits = torch.full((1, 3, 1, 1), -10.0)
    logits[0, 2] = 10.0  # confident "class 1"
    assert n1_cross_entropy(logits, classes, True) < 1e-3
    assert n1_cross_entropy(logits, classes, False) > 10


def test_labelmix_shapes_and_one_bit_per_class():
    classes = torch.randint(0, 4, (2, 16, 16))
    mask = labelmix_mask(classes)
    assert mask.shape == (2, 1, 16, 16)
    for c in classes.unique():
        assert mask[:, 0][classes == c].unique().numel() == 1
    real, fake = torch.ones(2, 3, 16, 16), torch.zeros(2, 3, 16, 16)
    mixed = labelmix_images(mask, real, fake)
    assert mixed.shape == real.shape and torch.equal(mixed[:, :1], mask)
    d = torch.randn(2, 5, 16, 16)
    assert labelmix_loss(mask, d, d, d) == 0
