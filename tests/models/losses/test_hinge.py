import torch

from sislab.models.losses.hinge import hinge_d_loss, hinge_g_loss


def test_d_loss_real_and_fake_by_hand():
    logits = torch.tensor([[-2.0, 0.5], [1.5, 3.0]])
    # real: relu(1 - x) = [3, 0.5, 0, 0] -> 0.875; fake: relu(1 + x) = [0, 1.5, 2.5, 4] -> 2.0
    torch.testing.assert_close(hinge_d_loss(logits, is_real=True), torch.tensor(0.875))
    torch.testing.assert_close(hinge_d_loss(logits, is_real=False), torch.tensor(2.0))


def test_multiscale_uses_last_output_and_averages_scales():
    feat = torch.full((1, 4, 2, 2), 100.0)  # ignored intermediate feature
    scale0 = [feat, torch.tensor([0.0, 2.0])]  # real: relu(1 - x) -> [1, 0] mean 0.5
    scale1 = [feat, torch.tensor([-1.0])]  # real: 2.0
    torch.testing.assert_close(hinge_d_loss([scale0, scale1], True), torch.tensor(1.25))
    # G: -mean per scale: -1.0 and 1.0 -> mean 0
    torch.testing.assert_close(hinge_g_loss([scale0, scale1]), torch.tensor(0.0))
    torch.testing.assert_close(hinge_g_loss([scale0]), torch.tensor(-1.0))
