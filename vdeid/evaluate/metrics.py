"""Image-quality and protection measures, as the seed papers define them.

Quality (Chatzikyriakidis et al., ICIP 2019, Table 3): the L2 norm of the
perturbation on [0, 1] pixels and the mean structural similarity (MSSIM,
Wang et al. 2004) between the original and the de-identified image; PSNR is
added for the naive methods' literature. Protection (Ghafourian et al.,
Eq. 5): the protection success rate at Top-k in 1:N identification, the
closed-set misclassification rate, and unlinkability to the photo's own
original (recogniser distance at or above its same-person threshold).

Every rate is a percentage in [0, 100]; :func:`wilson_interval` gives its
95 % confidence interval, so two rates can be compared within sampling error.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_shape
from ..errors import ShapeError
from ..imageops import to_float

__all__ = [
    "l2_distance",
    "linf_distance",
    "mssim",
    "psnr",
    "true_ranks",
    "protection_success_rate",
    "misclassification_rate",
    "unlinkability_rate",
    "rate",
    "wilson_interval",
    "TOP_K",
]

#: The ranks Ghafourian et al. report (Table 1).
TOP_K = (1, 5, 10, 25, 50)


def _pair(original: np.ndarray, protected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    check_shape(original, ["H", "W", 3], "original")
    if protected.shape != original.shape:
        raise ShapeError(f"protected image has shape {protected.shape}, original {original.shape}; they must match")
    return to_float(original).astype(np.float64), to_float(protected).astype(np.float64)


def l2_distance(original: np.ndarray, protected: np.ndarray) -> float:
    """L2 norm of the perturbation, ``||x_hat - x||_2`` on [0, 1] pixels.

    The measure of the P-FGVM paper's Table 3 (there on 178×218 CelebA
    crops): all pixels and channels of the image count.

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3)
        uint8 in [0, 255], uint16 or float in [0, 1]; converted with
        :func:`vdeid.imageops.to_float`.

    Returns
    -------
    float
        ``sqrt(sum((protected - original) ** 2))``, >= 0.
    """
    x, y = _pair(original, protected)
    return float(np.sqrt(((y - x) ** 2).sum()))


def linf_distance(original: np.ndarray, protected: np.ndarray) -> float:
    """Largest absolute pixel change on [0, 1] pixels (the BIM/ILLC budget's norm)."""
    x, y = _pair(original, protected)
    return float(np.abs(y - x).max())


def mssim(original: np.ndarray, protected: np.ndarray, *, data_range: float = 1.0) -> float:
    """Mean structural similarity of two RGB images (Wang et al. 2004).

    scikit-image's ``structural_similarity`` with the paper's settings
    (11×11 Gaussian window of σ = 1.5, population covariance), averaged over
    pixels and channels.

    Parameters
    ----------
    original, protected : ndarray of shape (H, W, 3)
        Converted to float in [0, 1] first, hence the default ``data_range``.
        Both sides must be at least 7 pixels.
    data_range : float, optional
        Dynamic range of the float images. (Default: 1.0)

    Returns
    -------
    float
        In [-1, 1]; 1 for identical images.
    """
    from skimage.metrics import structural_similarity

    x, y = _pair(original, protected)
    if min(x.shape[:2]) < 7:
        raise ShapeError(f"MSSIM needs images of at least 7×7 pixels, got {x.shape[:2]}")
    return float(
        structural_similarity(
            x, y, data_range=data_range, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


def psnr(original: np.ndarray, protected: np.ndarray, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (scikit-image, explicit ``data_range``).

    Returns ``inf`` for identical images.
    """
    x, y = _pair(original, protected)
    mse = float(((y - x) ** 2).mean())
    if mse == 0.0:
        return math.inf
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(x, y, data_range=data_range))


def true_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1-based rank of each probe's true identity in its score row.

    Ties count in the recogniser's favour (rank = 1 + number of identities
    scoring *strictly* higher), so a protection is never credited for a tie.

    Parameters
    ----------
    scores : ndarray of shape (N, K)
        Similarity of each probe to each enrolled identity (higher = more
        alike). NaN rows (no face) rank last.
    labels : ndarray of shape (N,), int
        Column of each probe's true identity, in [0, K).

    Returns
    -------
    ndarray of shape (N,), int64
        Ranks in [1, K]; ``K + 1`` for NaN rows.
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, np.int64)
    check_shape(scores, ["N", "K"], "scores")
    check_shape(labels, [scores.shape[0]], "labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ShapeError(f"labels must be in [0, {scores.shape[1]}), got {labels.min()}..{labels.max()}")
    true = scores[np.arange(len(labels)), labels]
    ranks = 1 + (scores > true[:, None]).sum(axis=1)
    ranks[~np.isfinite(true)] = scores.shape[1] + 1
    return ranks.astype(np.int64)


def rate(flags) -> float:
    """Percentage of True in a boolean sequence (NaN when empty)."""
    flags = np.asarray(flags, bool).reshape(-1)
    return float("nan") if flags.size == 0 else 100.0 * float(flags.mean())


def protection_success_rate(ranks, k: int) -> float:
    """Protection success rate at Top-k (Ghafourian et al., Eq. 5), in percent.

    A probe is protected at Top-k when its true identity is *not* among the
    ``k`` best-scoring identities: ``PSR@k = 100 - 100/N * #(rank <= k)``.

    Parameters
    ----------
    ranks : array_like of shape (N,)
        1-based ranks from :func:`true_ranks`.
    k : int
        >= 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return rate(np.asarray(ranks) > k)


def misclassification_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """Closed-set misclassification rate in percent (P-FGVM Table 3's MR).

    The share of probes whose best-scoring identity is not their own.
    """
    return protection_success_rate(true_ranks(scores, labels), 1)


def unlinkability_rate(distances, threshold: float) -> float:
    """Share of protected faces a recogniser no longer links to their own original.

    Parameters
    ----------
    distances : array_like of shape (N,)
        Recogniser distance between each protected face and the same photo's
        original face (NaN: no face, counted as unlinked).
    threshold : float
        The recogniser's same-person distance; a distance at or above it
        means "different people".
    """
    d = np.asarray(distances, np.float64).reshape(-1)
    return rate(~(d < threshold))


def wilson_interval(successes: int, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion, in percent.

    Parameters
    ----------
    successes, n : int
        Count of successes among ``n`` trials.
    z : float, optional
        Normal quantile; 1.96 for a 95 % interval. (Default: 1.96)

    Returns
    -------
    (low, high) : tuple of float
        In [0, 100]; ``(0, 100)`` when ``n`` is 0.
    """
    if n <= 0:
        return 0.0, 100.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)
