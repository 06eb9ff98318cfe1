"""Fréchet Inception Distance and Kernel Inception Distance from feature arrays, in float64.

FID follows pytorch-fid's ``calculate_frechet_distance``: ``np.cov(rowvar=False)`` statistics,
``scipy.linalg.sqrtm`` of the covariance product, a retry with ``eps`` added to both diagonals when
that square root is not finite, and a refusal when its diagonal keeps an imaginary part above
``1e-3``. KID is the unbiased MMD² with the cubic polynomial kernel
``k(x, y) = (x·y / d + 1)³`` averaged over random subsets (Bińkowski et al. 2018, as torch-fidelity
and clean-fid compute it), reported as the mean and the standard deviation over subsets.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg

from sislab.errors import DataError

logger = logging.getLogger(__name__)

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
# Above this many rows per side the full kernel matrices (three of them, float64) would take more
# than ~200 MB; subsets then get their own kernels as in the reference implementations.
_FULL_KERNEL_MAX_ROWS = 3000


def _as_features(features: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise DataError(
            f"{what}: features must be a 2-D [N, D] array, got shape {array.shape}",
            fix="pass one feature row per image",
        )
    if array.shape[0] < 2:
        raise DataError(
            f"{what}: at least 2 images are needed, got {array.shape[0]}",
            fix="evaluate more images (FID is only meaningful for thousands)",
        )
    if not np.isfinite(array).all():
        raise DataError(f"{what}: features contain NaN or infinity")
    return array


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``[N, D]`` features, float64 (pytorch-fid's statistics).

    Raises:
        DataError: Not 2-D, fewer than 2 rows, or non-finite values.
    """
    array = _as_features(features, "FID statistics")
    return array.mean(axis=0), np.cov(array, rowvar=False)


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
) -> float:
    """Fréchet distance ``|mu1 - mu2|² + tr(S1 + S2 - 2 sqrt(S1 S2))`` as pytorch-fid computes it.

    Args:
        mu1: Mean of the first feature set, ``[D]``.
        sigma1: Covariance of the first set, ``[D, D]``.
        mu2: Mean of the second set.
        sigma2: Covariance of the second set.
        eps: Diagonal offset used only when the plain matrix square root is not finite.

    Raises:
        DataError: Shapes that do not match, or a square root whose diagonal has an imaginary
            part above 1e-3 (too few images for the feature dimension, typically).
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    dim = mu1.shape[0]
    if mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise DataError(
            f"FID statistics do not match: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}",
            fix="compute both sides with the same feature extractor",
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        logger.warning("FID: singular covariance product, adding %g to the diagonals", eps)
        offset = np.eye(dim) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise DataError(
                "FID: the square root of the covariance product has an imaginary component "
                f"{np.max(np.abs(covmean.imag)):.3g}",
                fix="use more images than the feature dimension on both sides",
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two ``[N, D]`` feature sets (statistics, then ``frechet_distance``)."""
    mu1, sigma1 = feature_statistics(features1)
    mu2, sigma2 = feature_statistics(features2)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def _mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    num_subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and standard deviation of the unbiased MMD² over random subsets.

    Each subset draws ``subset_size`` rows without replacement from each side (capped at the
    smaller side), with ``numpy.random.default_rng(seed)``, so the result is reproducible.

    Args:
        features1: ``[N1, D]`` features (e.g. real images).
        features2: ``[N2, D]`` features of the same extractor.
        num_subsets: Number of subsets averaged.
        subset_size: Rows per side in a subset.
        seed: Seed of the subset draws.

    Returns:
        ``(mean, std)``; the std is over subsets (``ddof=0``, as torch-fidelity reports it).

    Raises:
        DataError: Bad shapes, different feature dimensions, or non-positive sizes.
    """
    x = _as_features(features1, "KID first set")
    y = _as_features(features2, "KID second set")
    if x.shape[1] != y.shape[1]:
        raise DataError(
            f"KID: feature dimensions differ ({x.shape[1]} vs {y.shape[1]})",
            fix="compute both sides with the same feature extractor",
        )
    if num_subsets < 1 or subset_size < 2:
        raise DataError(
            f"KID needs num_subsets >= 1 and subset_size >= 2, got {num_subsets}, {subset_size}"
        )
    dim = x.shape[1]
    m = min(subset_size, x.shape[0], y.shape[0])
    rng = np.random.default_rng(seed)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / dim + 1) ** 3

    # Small sets: the three kernel matrices once, then every subset is an index lookup.
    full = None
    if max(x.shape[0], y.shape[0]) <= _FULL_KERNEL_MAX_ROWS:
        full = (kernel(x, x), kernel(y, y), kernel(x, y))
    scores = np.empty(num_subsets)
    for s in range(num_subsets):
        ix = rng.choice(x.shape[0], m, replace=False)
        iy = rng.choice(y.shape[0], m, replace=False)
        if full is not None:
            k_xx, k_yy, k_xy = full
            scores[s] = _mmd2_unbiased(
                k_xx[np.ix_(ix, ix)], k_yy[np.ix_(iy, iy)], k_xy[np.ix_(ix, iy)]
            )
        else:
            xs, ys = x[ix], y[iy]
            scores[s] = _mmd2_unbiased(kernel(xs, xs), kernel(ys, ys), kernel(xs, ys))
    return float(scores.mean()), float(scores.std())
