"""Fréchet Inception Distance and Kernel Inception Distance from feature arrays, in float64.

FID is pytorch-fid's quantity ``|mu1 - mu2|² + tr(S1 + S2 - 2 sqrt(S1 S2))`` with
``np.cov(rowvar=False)`` statistics, but ``tr sqrt(S1 S2)`` is not taken through
``scipy.linalg.sqrtm`` (a complex Schur decomposition: ~40 s at D = 2048 on 2 cores, in every
evaluation of every trial). The eigenvalues of ``S1 S2`` are those of a symmetric PSD matrix, so
the trace is a sum of square roots of ``eigvalsh`` values: of ``R S2 R`` with ``R = S1^(1/2)``, or,
when one side has fewer images ``n`` than feature dimensions, of the ``n x n`` matrix
``C S C^T / (n - 1)`` of its centred features ``C`` (the usual case for evaluations during
training). Both are exact; ``tests/metrics/test_fid.py`` checks them against pytorch-fid's own
``calculate_frechet_distance``. KID is the unbiased MMD² with the cubic polynomial kernel
``k(x, y) = (x·y / d + 1)³`` averaged over random subsets (Bińkowski et al. 2018, as torch-fidelity
and clean-fid compute it), reported as the mean and the standard deviation over subsets.
"""

from __future__ import annotations

import numpy as np

from sislab.errors import DataError

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
# Above this many rows per side the full kernel matrices (three of them, float64) would take more
# than ~200 MB; subsets then get their own kernels as in the reference implementations.
_FULL_KERNEL_MAX_ROWS = 3000
# Eigenvalues below -tolerance x the largest are not rounding noise: the matrix is not a covariance.
_PSD_TOLERANCE = 1e-8


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


def _psd_eigen(matrix: np.ndarray, what: str, vectors: bool = False):
    """Eigenvalues (and vectors) of a symmetric PSD matrix, rounding noise below zero clipped."""
    values, basis = np.linalg.eigh(matrix) if vectors else (np.linalg.eigvalsh(matrix), None)
    largest = max(float(np.abs(values).max(initial=0.0)), 1e-300)
    if values.min(initial=0.0) < -_PSD_TOLERANCE * largest:
        raise DataError(
            f"FID: {what} is not positive semi-definite (eigenvalue {values.min():.3g})",
            fix="pass covariances computed by feature_statistics (np.cov of real features)",
        )
    values = np.clip(values, 0.0, None)
    return (values, basis) if vectors else values


def _gaussian(mu: np.ndarray, sigma: np.ndarray, dim: int, what: str):
    mu = np.atleast_1d(np.asarray(mu, np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, np.float64))
    if mu.shape != (dim,) or sigma.shape != (dim, dim):
        raise DataError(
            f"FID statistics do not match: {what} has mu {mu.shape} and sigma {sigma.shape}, "
            f"the other side {dim} dimensions",
            fix="compute both sides with the same feature extractor",
        )
    return mu, sigma


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance ``|mu1 - mu2|² + tr(S1 + S2 - 2 sqrt(S1 S2))`` of two Gaussians.

    Args:
        mu1: Mean of the first feature set, ``[D]``.
        sigma1: Covariance of the first set, ``[D, D]``.
        mu2: Mean of the second set.
        sigma2: Covariance of the second set.

    Raises:
        DataError: Shapes that do not match, or a covariance that is not PSD.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu1, sigma1 = _gaussian(mu1, sigma1, mu1.shape[0], "the first side")
    mu2, sigma2 = _gaussian(mu2, sigma2, mu1.shape[0], "the second side")
    values, basis = _psd_eigen(sigma1, "the first covariance", vectors=True)
    root = (basis * np.sqrt(values)) @ basis.T
    product = _psd_eigen(root @ sigma2 @ root, "the second covariance")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.sqrt(product).sum())


def frechet_distance_to_statistics(
    features: np.ndarray, mu: np.ndarray, sigma: np.ndarray
) -> float:
    """FID between ``[N, D]`` features and a Gaussian ``(mu, sigma)`` (e.g. cached reference
    statistics): with ``N <= D`` through the features' ``N x N`` form, else ``frechet_distance``.

    Raises:
        DataError: Bad features, shapes that do not match, or a covariance that is not PSD.
    """
    array = _as_features(features, "FID features")
    n, dim = array.shape
    mu, sigma = _gaussian(mu, sigma, dim, "the statistics")
    if n > dim:
        return frechet_distance(*feature_statistics(array), mu, sigma)
    own_mu = array.mean(axis=0)
    centred = array - own_mu
    # S_f = C^T C / (n - 1): the non-zero eigenvalues of S_f S are those of C S C^T / (n - 1).
    small = centred @ sigma @ centred.T / (n - 1)
    product = _psd_eigen((small + small.T) / 2, "the covariance")
    diff = own_mu - mu
    trace_own = float((centred * centred).sum()) / (n - 1)
    return float(diff @ diff + trace_own + np.trace(sigma) - 2 * np.sqrt(product).sum())


def _feature_pair(
    features1: np.ndarray, features2: np.ndarray, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Both sets checked by ``_as_features``, and of the same feature dimension."""
    x = _as_features(features1, f"{metric} first set")
    y = _as_features(features2, f"{metric} second set")
    if x.shape[1] != y.shape[1]:
        raise DataError(
            f"{metric}: feature dimensions differ ({x.shape[1]} vs {y.shape[1]})",
            fix="compute both sides with the same feature extractor",
        )
    return x, y


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two ``[N, D]`` feature sets (the smaller set kept as features)."""
    x, y = _feature_pair(features1, features2, "FID")
    small, large = (x, y) if len(x) <= len(y) else (y, x)
    return frechet_distance_to_statistics(small, *feature_statistics(large))


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
    x, y = _feature_pair(features1, features2, "KID")
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
