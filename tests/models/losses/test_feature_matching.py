import torch

from sislab.models.losses.feature_matching import feature_matching_loss


def test_by_hand_excludes_logits_and_divides_by_num_d():
    zeros = torch.zeros(1, 2, 2, 2)
    fake = [[zeros + 1, zeros + 3, zeros + 50], [zeros + 2, zeros + 99]]
    real = [[zeros, zeros, zeros], [zeros, zeros]]
    # scale 0: L1 1 + 3, scale 1: 2 (logits skipped); / num_d = 2
    torch.testing.assert_close(feature_matching_loss(fake, real), torch.tensor(3.0))


def test_real_features_are_detached():
    fake = [[torch.ones(2, requires_grad=True), torch.zeros(1)]]
    real = [[torch.zeros(2, requires_grad=True), torch.zeros(1)]]
    feature_matching_loss(fake, real).backward()
    assert fake[0][0].grad is not None and real[0][0].grad is None
