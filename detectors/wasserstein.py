"""Wasserstein-1 distance of a window from a reference sample, in reference scale units."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from detectors._binning import FloatArray
from detectors._windows import numeric_reference, numeric_window
from detectors.feature_profile import FeatureProfile
from detectors.result import DriftResult

__all__ = ["reference_scale", "wasserstein"]

#: Interquartile range of the standard normal, so IQR / this estimates sigma.
NORMAL_IQR = 1.3489795003921634


def reference_scale(reference: FeatureProfile) -> float:
    """Spread used to normalise distances: robust sigma, else sigma, else 1.

    ``IQR / 1.349`` of the reference sample (the standard deviation for normal
    data, robust to outliers); if the IQR is 0 (heavily tied data), the standard
    deviation; if that is 0 too (a constant feature), 1.
    """
    sample = numeric_reference(reference, "reference_scale").sample
    upper, lower = np.quantile(sample, [0.75, 0.25])
    for scale in ((upper - lower) / NORMAL_IQR, np.std(sample)):
        if scale > 0:
            return float(scale)
    return 1.0


def wasserstein_1(window: FloatArray, sample: FloatArray) -> float:
    """Wasserstein-1 distance between two ascending arrays, ``∫ |F - G| dx``."""
    points = np.concatenate((window, sample))
    points.sort(kind="mergesort")
    widths = np.diff(points)
    cdf_window = np.searchsorted(window, points[:-1], side="right") / window.size
    cdf_sample = np.searchsorted(sample, points[:-1], side="right") / sample.size
    return float(np.sum(np.abs(cdf_window - cdf_sample) * widths))


def wasserstein(
    window: ArrayLike, reference: FeatureProfile, *, normalise: bool = True
) -> DriftResult:
    """Wasserstein-1 (earth mover's) distance of ``window`` from the reference sample.

    Parameters
    ----------
    window
        Finite values of a numeric feature.
    reference
        The feature's numeric profile; its stored ``sample`` is the reference.
    normalise
        Divide by :func:`reference_scale` so that a threshold means the same for
        every feature; ``False`` gives the distance in the feature's own units.

    Returns
    -------
    DriftResult
        ``statistic`` is the (scaled) distance; ``pvalue`` is ``None``. Unscaled it
        equals ``scipy.stats.wasserstein_distance(window, reference.sample)``.

    Notes
    -----
    For empirical CDFs :math:`F` of the window and :math:`G` of the sample,

    .. math:: W_1 = \\int_{-\\infty}^{\\infty} |F(x) - G(x)|\\,dx

    [1]_, a sum over the gaps between consecutive pooled values. A shift of the
    whole distribution by :math:`\\delta` gives :math:`W_1 = |\\delta|`, so after
    dividing by the reference's scale :math:`s` (robust sigma, see
    :func:`reference_scale`) the statistic reads as "shift in standard deviations":
    0.1 means about a tenth of a sigma, whatever the feature's units [2]_.

    References
    ----------
    .. [1] Vallender, S. S. (1974). Calculation of the Wasserstein distance between
       probability distributions on the line. *Theory Probab. Appl.* 18(4), 784-786.
    .. [2] Ramdas, A., García Trillos, N., Cuturi, M. (2017). On Wasserstein
       two-sample testing and related families of nonparametric tests. *Entropy*
       19(2), 47.

    Examples
    --------
    >>> from detectors.profile_builder import build_profile
    >>> rng = np.random.default_rng(5)
    >>> profile = build_profile({"x": v} for v in rng.normal(10, 4, size=4000).tolist())
    >>> shifted = rng.normal(12, 4, size=1000)  # half a sigma up
    >>> round(wasserstein(shifted, profile.features["x"]).statistic, 1)
    0.5
    """
    values = numeric_window(window, "wasserstein")
    ref = numeric_reference(reference, "wasserstein")
    distance = wasserstein_1(values, ref.sample)
    return DriftResult(distance / reference_scale(ref) if normalise else distance)
