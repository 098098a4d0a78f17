"""Two-sample Kolmogorov-Smirnov test of a window against a reference sample."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from detectors._binning import FloatArray
from detectors._windows import numeric_reference, numeric_window
from detectors.feature_profile import FeatureProfile
from detectors.result import DriftResult

try:
    # The exact null distribution of the two-sample statistic (Hodges' lattice-path
    # recursion, compiled) has no public entry point in scipy.
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover - depends on the scipy release
    _attempt_exact_2kssamp = None

__all__ = ["ks_statistic", "ks_test"]

#: Largest sample size for which scipy's method="auto" computes the exact p-value.
EXACT_MAX_N = 10_000


def ks_statistic(window: FloatArray, sample: FloatArray) -> float:
    """Largest gap between the empirical CDFs of two ascending arrays.

    Both CDFs are evaluated at every point of either array with one vectorised
    ``searchsorted`` each, which handles ties exactly.
    """
    points = np.concatenate((window, sample))
    cdf_window = np.searchsorted(window, points, side="right") / window.size
    cdf_sample = np.searchsorted(sample, points, side="right") / sample.size
    return float(np.max(np.abs(cdf_window - cdf_sample)))


def ks_test(window: ArrayLike, reference: FeatureProfile) -> DriftResult:
    """Two-sided two-sample Kolmogorov-Smirnov test against the profile's sample.

    Parameters
    ----------
    window
        Finite values of a numeric feature.
    reference
        The feature's numeric profile; its stored ``sample`` is the second sample.

    Returns
    -------
    DriftResult
        ``statistic`` is :math:`D` and ``pvalue`` its two-sided p-value; both equal
        ``scipy.stats.ks_2samp(window, reference.sample)`` with ``method="auto"``.

    Notes
    -----
    With empirical CDFs :math:`F_n` of the window and :math:`G_m` of the sample,

    .. math:: D = \\sup_x |F_n(x) - G_m(x)|.

    As in scipy's ``"auto"``: when :math:`\\max(n, m) \\le 10\\,000` the p-value is
    exact, :math:`P(D_{n,m} \\ge D)` under the null, by Hodges' lattice-path count
    [1]_ in the numerically stable form of [2]_; otherwise (or if that computation
    fails) it is :math:`1 - K_{\\lfloor e \\rceil}(D)` with :math:`e = nm / (n + m)`,
    where :math:`K_k` is the one-sample distribution ``scipy.stats.kstwo`` [3]_.
    The test assumes continuous data: with ties the p-value is conservative. The
    reference sample holds every reference value up to the profile's
    ``max_sample``; beyond, it is a random subsample, so :math:`m` is at most
    ``max_sample``.

    References
    ----------
    .. [1] Hodges, J. L. (1958). The significance probability of the Smirnov
       two-sample test. *Arkiv för Matematik* 3(5), 469-486.
    .. [2] Viehmann, T. (2021). Numerically more stable computation of the p-values
       for the two-sample Kolmogorov-Smirnov test. arXiv:2102.08037.
    .. [3] Simard, R., L'Ecuyer, P. (2011). Computing the two-sided
       Kolmogorov-Smirnov distribution. *J. Stat. Softw.* 39(11).

    Examples
    --------
    >>> from detectors.profile_builder import build_profile
    >>> rng = np.random.default_rng(3)
    >>> profile = build_profile({"x": v} for v in rng.normal(size=2000).tolist())
    >>> result = ks_test(rng.normal(0.3, 1.0, size=500), profile.features["x"])
    >>> round(result.statistic, 3), result.pvalue < 1e-4
    (0.136, True)
    """
    values = numeric_window(window, "ks_test")
    sample = numeric_reference(reference, "ks_test").sample
    statistic = ks_statistic(values, sample)
    return DriftResult(statistic, _pvalue(statistic, values, sample))


def _pvalue(statistic: float, window: FloatArray, sample: FloatArray) -> float:
    n1, n2 = window.size, sample.size
    if max(n1, n2) <= EXACT_MAX_N:
        if _attempt_exact_2kssamp is None:  # pragma: no cover - depends on scipy
            return float(stats.ks_2samp(window, sample, method="auto").pvalue)
        exact: Any = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), statistic, "two-sided")
        success, _, probability = exact
        if success:
            return float(np.clip(probability, 0.0, 1.0))
    larger, smaller = max(n1, n2), min(n1, n2)
    effective_n = float(larger) * smaller / (larger + smaller)
    probability = stats.kstwo.sf(statistic, np.round(effective_n))
    return float(np.clip(probability, 0.0, 1.0))
