import pytest
import torch
from torchvision.models import vgg19

from sislab.errors import WeightsError
from sislab.models.losses.perceptual import VGG19Perceptual, vgg19_features


@pytest.fixture(scope="module")
def torchvision_state():
    torch.manual_seed(0)
    return vgg19(weights=None).state_dict()  # random init; nothing is downloaded


def test_layout_matches_torchvision(torchvision_state):
    ours = vgg19_features().state_dict()
    theirs = {k[len("features.") :]: v for k, v in torchvision_state.items() if "features." in k}
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_loads_torchvision_state_dict_by_key(torchvision_state):
    loss = VGG19Perceptual(torchvision_state)
    torch.testing.assert_close(loss.features[28].weight, torchvision_state["features.28.weight"])
    assert len(loss.features) == 30
    assert not any(p.requires_grad for p in loss.parameters())


def test_zero_for_identical_images_positive_otherwise(torchvision_state):
    loss = VGG19Perceptual(torchvision_state)
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loss(a, a.clone()).item() == 0.0
    assert loss(a, torch.rand(2, 3, 32, 32) * 2 - 1).item() > 0


def test_gradient_flows_to_fake_only():
    loss = VGG19Perceptual(None)
    fake = torch.rand(1, 3, 32, 32, requires_grad=True)
    real = torch.rand(1, 3, 32, 32, requires_grad=True)
    loss(fake, real).backward()
    assert fake.grad is not None and real.grad is None


def test_wrong_state_dict_is_a_weights_error(torchvision_state):
    broken = dict(torchvision_state)
    broken["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    with pytest.raises(WeightsError, match="vgg19 layout"):
        VGG19Perceptual(broken)
    missing = {k: v for k, v in torchvision_state.items() if k != "features.5.bias"}
    with pytest.raises(WeightsError, match="vgg19 layout"):
        VGG19Perceptual(missing)
