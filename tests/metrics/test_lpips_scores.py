"""LPIPS: trunk weights through the registry, masked distances, sample diversity."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from sislab.errors import WeightsError
from sislab.metrics import weights
from sislab.metrics.lpips_scores import (
    backbone_state_dict,
    load_lpips,
    lpips_distance,
    lpips_diversity,
    masked_lpips,
    region_lpips,
    sample_pairs,
)


@pytest.fixture(scope="module")
def substitute():
    model, info = load_lpips("alex", allow_substitute=True)
    return model, info


def _images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_substitute_is_flagged_and_seeded(substitute) -> None:
    model, info = substitute
    assert info.substitute and info.sha256 == "" and info.name == "alexnet"
    assert info.note.startswith("random AlexNet backbone")
    again, _ = load_lpips("alex", allow_substitute=True)
    assert torch.equal(model.net.slice1[0].weight, again.net.slice1[0].weight)
    assert not any(p.requires_grad for p in model.parameters())


def test_all_ones_mask_equals_plain_lpips(substitute) -> None:
    model, _ = substitute
    a, b = _images(3, seed=1), _images(3, seed=2)
    plain = lpips_distance(model, a, b)
    masked = masked_lpips(model, a, b, torch.ones(3, 64, 64, dtype=torch.bool))
    assert plain.shape == (3,) and (plain > 0).all()
    torch.testing.assert_close(masked, plain, rtol=1e-5, atol=1e-7)
    assert lpips_distance(model, a, a).abs().max() < 1e-6


def test_regions_split_the_difference(substitute) -> None:
    model, _ = substitute
    a = _images(2, seed=3)
    b = a.clone()
    b[:, :, :, 32:] = _images(2, seed=4)[:, :, :, 32:]  # only the right half differs
    left = torch.zeros(64, 64, dtype=torch.bool)
    left[:, :32] = True
    scores = region_lpips(model, a, b, torch.stack([left, ~left, torch.zeros_like(left)]))
    assert scores.shape == (2, 3)
    assert (scores[:, 1] > 3 * scores[:, 0]).all()  # receptive fields leak a little only
    assert scores[:, 2].isnan().all()  # an empty region has no mean


def test_pairings() -> None:
    assert sample_pairs(4) == ([0, 1, 2], [1, 2, 3])
    first, second = sample_pairs(4, "all")
    assert list(zip(first, second, strict=True)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert len(sample_pairs(20)[0]) == 19  # the papers' 19 pairs per label map
    with pytest.raises(ValueError):
        sample_pairs(1)


def test_diversity_of_identical_samples_is_zero(substitute) -> None:
    model, _ = substitute
    same = _images(1, seed=5).expand(4, -1, -1, -1)
    assert lpips_diversity(model, same) == pytest.approx(0.0, abs=1e-6)
    assert lpips_diversity(model, _images(4, seed=6), "all") > 0.01


def test_torchvision_alexnet_file_sets_the_trunk(tmp_path: Path, monkeypatch) -> None:
    from torchvision.models import alexnet

    torch.manual_seed(7)
    state = alexnet(weights=None).state_dict()
    path = tmp_path / "alexnet-fake.pth"
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    # The registry pins torchvision's file; a fake one needs its own entry to pass the check.
    fake = dataclasses.replace(weights.REGISTRY["alexnet"], sha256=digest)
    monkeypatch.setitem(weights.REGISTRY, "alexnet", fake)
    model, info = load_lpips("alex", paths={"alexnet": str(path)}, sha256={"alexnet": digest})
    assert info == type(info)("alexnet", digest)
    for index, slice_no in ((0, 1), (3, 2), (6, 3), (8, 4), (10, 5)):
        layer = model.net.get_submodule(f"slice{slice_no}.{index}")
        assert torch.equal(layer.weight, state[f"features.{index}.weight"])
        assert torch.equal(layer.bias, state[f"features.{index}.bias"])


def test_backbone_mapping_drops_the_classifier() -> None:
    state = {
        "features.0.weight": torch.ones(1),
        "features.10.bias": torch.ones(1),
        "classifier.1.weight": torch.ones(1),
    }
    assert set(backbone_state_dict(state, "alex")) == {"slice1.0.weight", "slice5.10.bias"}
    with pytest.raises(WeightsError, match="features"):
        backbone_state_dict({"classifier.1.weight": torch.ones(1)}, "vgg")


def test_missing_trunk_says_what_to_put_where() -> None:
    with pytest.raises(WeightsError) as err:
        load_lpips("alex")
    text = str(err.value)
    assert "alexnet-owt-7be5be79.pth" in text and "weights.paths.alexnet" in text


def test_wrong_hash_is_an_error_even_with_substitutes_allowed(tmp_path: Path) -> None:
    path = tmp_path / "alexnet.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="does not match"):
        load_lpips("alex", paths={"alexnet": str(path)}, allow_substitute=True)


def test_file_that_does_not_fit_the_trunk(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "alexnet.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    fake = dataclasses.replace(weights.REGISTRY["alexnet"], sha256=digest)
    monkeypatch.setitem(weights.REGISTRY, "alexnet", fake)
    with pytest.raises(WeightsError, match="do not fit the LPIPS AlexNet trunk"):
        load_lpips("alex", paths={"alexnet": str(path)})
