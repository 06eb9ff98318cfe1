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


def test_class_balance_weights_with_the_global_batch_counts():
    # Under DDP each rank passes the counts of all ranks' batches: its weights are then its rows
    # of the global batch's weights.
    classes = torch.tensor([[[0, 0, 0, 1]], [[1, 1, 2, 2]]])
    counts = torch.bincount(classes.reshape(-1), minlength=3).float()
    whole = class_balance_weights(classes, 3, None)
    for half in (0, 1):
        mine = class_balance_weights(classes[half : half + 1], 3, None, counts)
        assert torch.equal(mine, whole[half : half + 1])
    # numel 8, K = 3: class 0 (3 pixels) -> 8 / 9.
    assert torch.allclose(whole[0, 0, 0], torch.tensor(8 / 9))


def test_labelmix_draws_one_bit_per_class_of_the_dataset_without_a_host_sync():
    classes = torch.zeros(2, 8, 8, dtype=torch.long)  # only class 0 present
    torch.manual_seed(0)
    bits = torch.randint(0, 2, (5,))
    torch.manual_seed(0)
    mask = labelmix_mask(classes, num_classes=5)  # 5 bits drawn whatever the batch holds
    assert torch.equal(mask, bits[classes].unsqueeze(1).float())
