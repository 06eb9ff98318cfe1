"""FID and KID against independent float64 references written here, plus their error paths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sislab.errors import DataError
from sislab.metrics import fid


def _features(seed: int, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing + shift


def _reference_fid(x: np.ndarray, y: np.ndarray) -> float:
    """FID from first principles: explicit moments, tr sqrt(S1 S2) via symmetric eigenproblems.

    tr sqrt(S1 S2) = tr sqrt(A S2 A) with A = S1^(1/2), and A S2 A is symmetric PSD.
    """
    mu_x, mu_y = x.sum(0) / len(x), y.sum(0) / len(y)
    cx, cy = x - mu_x, y - mu_y
    s1, s2 = cx.T @ cx / (len(x) - 1), cy.T @ cy / (len(y) - 1)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


@pytest.mark.parametrize(("n1", "n2", "d"), [(300, 250, 20), (90, 120, 64)])
def test_fid_matches_independent_reference(n1: int, n2: int, d: int) -> None:
    x, y = _features(1, n1, d), _features(2, n2, d, shift=0.3)
    expected = _reference_fid(x, y)
    assert abs(fid.fid_from_features(x, y) - expected) / expected < 1e-6


def test_statistics_are_float64_mean_and_sample_covariance() -> None:
    x = _features(3, 50, 4).astype(np.float32)
    mu, sigma = fid.feature_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64
    centred = x.astype(np.float64) - x.astype(np.float64).mean(0)
    np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-12)


def test_fid_of_a_set_with_itself_is_zero() -> None:
    x = _features(4, 100, 8)
    assert abs(fid.fid_from_features(x, x)) < 1e-8


@pytest.mark.parametrize(("n1", "n2", "d"), [(12, 300, 64), (300, 12, 64), (10, 16, 64)])
def test_fewer_images_than_dimensions_match_pytorch_fid(n1: int, n2: int, d: int) -> None:
    """The N x N form (evaluations during training: a few images, 2048 dimensions) is the same
    number as pytorch-fid's sqrtm, and as the full eigen form from statistics."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    x, y = _features(5, n1, d), _features(6, n2, d, shift=0.2)
    expected = calculate_frechet_distance(*fid.feature_statistics(x), *fid.feature_statistics(y))
    assert fid.fid_from_features(x, y) == pytest.approx(expected, rel=1e-6)
    assert fid.frechet_distance_to_statistics(x, *fid.feature_statistics(y)) == pytest.approx(
        expected, rel=1e-6
    )
    stats = fid.feature_statistics(x) + fid.feature_statistics(y)
    assert fid.frechet_distance(*stats) == pytest.approx(expected, rel=1e-6)


def test_full_rank_statistics_match_pytorch_fid() -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    stats = fid.feature_statistics(_features(7, 400, 32)) + fid.feature_statistics(
        _features(8, 350, 32, shift=0.5)
    )
    assert fid.frechet_distance(*stats) == pytest.approx(
        calculate_frechet_distance(*stats), rel=1e-9
    )


def test_a_covariance_that_is_not_psd_is_refused() -> None:
    with pytest.raises(DataError, match="not positive semi-definite"):
        fid.frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(DataError, match=r"2-D \[N, D\]"):
        fid.feature_statistics(np.zeros(5))
    with pytest.raises(DataError, match="at least 2"):
        fid.feature_statistics(np.zeros((1, 3)))
    with pytest.raises(DataError, match="do not match"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(DataError, match="dimensions differ"):
        fid.fid_from_features(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(DataError, match="dimensions differ"):
        fid.kernel_inception_distance(np.zeros((4, 2)), np.zeros((4, 3)))


def _reference_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (a·b / d + 1)³, by explicit loops over pairs."""
    m, d = len(x), x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (sum(float(p) * float(q) for p, q in zip(a, b, strict=True)) / d + 1) ** 3

    pairs = list(itertools.permutations(range(m), 2))
    xx = sum(k(x[i], x[j]) for i, j in pairs) / len(pairs)
    yy = sum(k(y[i], y[j]) for i, j in pairs) / len(pairs)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("full_kernels", [True, False])
def test_kid_matches_explicit_loops(monkeypatch: pytest.MonkeyPatch, full_kernels: bool) -> None:
    if not full_kernels:
        monkeypatch.setattr(fid, "_FULL_KERNEL_MAX_ROWS", 0)
    x, y = _features(5, 30, 6), _features(6, 25, 6, shift=0.5)
    subsets, size, seed = 5, 10, 3
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(subsets):
        ix = rng.choice(len(x), size, replace=False)
        iy = rng.choice(len(y), size, replace=False)
        scores.append(_reference_mmd(x[ix], y[iy]))
    mean, std = fid.kernel_inception_distance(x, y, subsets, size, seed)
    assert abs(mean - np.mean(scores)) / abs(np.mean(scores)) < 1e-6
    assert abs(std - np.std(scores)) / np.std(scores) < 1e-6


def test_kid_subset_size_is_capped_at_the_smaller_set() -> None:
    x, y = _features(7, 12, 4), _features(8, 9, 4, shift=1.0)
    capped = fid.kernel_inception_distance(x, y, num_subsets=4, subset_size=1000, seed=2)
    assert capped == fid.kernel_inception_distance(x, y, num_subsets=4, subset_size=9, seed=2)
    # Subsets holding all of both sets are the same set, whatever the order.
    mean, std = fid.kernel_inception_distance(x[:9], y, num_subsets=3)
    assert std == pytest.approx(0, abs=1e-12)
    assert mean == pytest.approx(_reference_mmd(x[:9], y), rel=1e-9)
