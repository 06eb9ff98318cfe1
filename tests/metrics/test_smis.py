"""mCSD/mOCD on toy generators whose behaviour is known."""

from __future__ import annotations

import pytest
import torch

from sislab.metrics.lpips_scores import load_lpips
from sislab.metrics.smis import smis_diversity

SIZE = 128  # large enough that AlexNet's receptive fields leak little across region borders


@pytest.fixture(scope="module")
def model():
    return load_lpips("alex", allow_substitute=True)[0]


def _stripes() -> torch.Tensor:
    label = torch.zeros(SIZE, SIZE, dtype=torch.long)
    label[:, SIZE // 3 : 2 * SIZE // 3] = 1
    label[:, 2 * SIZE // 3 :] = 2
    return label


BASE = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _noise(class_id: int, n: int) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(class_id)) * 2 - 1


def smis_generator(label: torch.Tensor, class_id: int, n: int) -> torch.Tensor:
    """Resampling class c changes exactly c's pixels: an ideal SMIS model."""
    return torch.where((label == class_id)[None, None], _noise(class_id, n), BASE[None])


def global_generator(label: torch.Tensor, class_id: int, n: int) -> torch.Tensor:
    """Every class's code changes the whole image: no semantic control at all."""
    return _noise(class_id, n)


def test_ideal_smis_model_has_low_mocd(model) -> None:
    result = smis_diversity(model, smis_generator, [_stripes()], samples=3)
    assert result.label_maps == 1 and result.pairs == 2
    assert sorted(result.per_class) == [0, 1, 2]
    assert result.mcsd > 0.02
    assert result.mocd < 0.15 * result.mcsd  # ~0 up to receptive-field leaks at the borders
    whole = smis_diversity(model, global_generator, [_stripes()], samples=3)
    assert whole.mocd == pytest.approx(whole.mcsd, rel=0.2)
    assert whole.mocd > 5 * result.mocd


def test_dontcare_and_chosen_classes(model) -> None:
    label = _stripes()
    label[:, : SIZE // 3] = 255
    calls = []

    def generate(label: torch.Tensor, class_id: int, n: int) -> torch.Tensor:
        calls.append(class_id)
        return smis_generator(label, class_id, n)

    result = smis_diversity(model, generate, [label], samples=2, ignore_index=255, classes=[2])
    assert calls == [2] and list(result.per_class) == [2]


def test_frozen_generator_scores_zero(model) -> None:
    def frozen(label: torch.Tensor, class_id: int, n: int) -> torch.Tensor:
        return BASE[None].expand(n, -1, -1, -1)

    full = torch.zeros(SIZE, SIZE, dtype=torch.long)
    result = smis_diversity(model, frozen, [_stripes(), full], samples=2)
    assert result.mcsd == pytest.approx(0.0, abs=1e-6)
    assert result.mocd == pytest.approx(0.0, abs=1e-6)
    assert result.label_maps == 2


def test_summed_class_totals_equal_smis_diversity(model) -> None:
    from sislab.metrics.smis import class_totals, diversity_from_totals

    second = _stripes().flip(-1)
    second[:8] = 3  # a class only in the second map
    # Two "ranks", one label map each: their summed totals give the one-process metrics.
    totals = sum(
        class_totals(model, smis_generator, lab, 5, samples=3) for lab in (_stripes(), second)
    )
    summed = diversity_from_totals(totals)
    direct = smis_diversity(model, smis_generator, [_stripes(), second], samples=3)
    assert sorted(summed.per_class) == sorted(direct.per_class) == [0, 1, 2, 3]
    assert summed.mcsd == pytest.approx(direct.mcsd, rel=1e-6)
    assert summed.mocd == pytest.approx(direct.mocd, rel=1e-6)
    assert totals[1, 4] == 0  # class 4 is in no map: it enters no mean
