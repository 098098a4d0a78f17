"""Two-sample Kolmogorov-Smirnov test of a window against a reference sample."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from detectors._binning import FloatArray
from detectors._kstwo import kstwo_sf
from detectors._windows import numeric_reference, numeric_window
from detectors.feature_profile import FeatureProfile
from detectors.result import DriftResult

__all__ = ["KSMethod", "asymp_pvalues", "ks_statistic", "ks_test"]

#: How the p-value is computed, as ``scipy.stats.ks_2samp``'s ``method``.
KSMethod = Literal["auto", "exact", "asymp"]
METHODS: tuple[KSMethod, ...] = ("auto", "exact", "asymp")

#: Largest sample size for which scipy's method="auto" computes the exact p-value.
EXACT_MAX_N = 10_000
_INT32_MAX = np.iinfo(np.int32).max


def ks_statistic(window: FloatArray, sample: FloatArray) -> float:
    """Largest gap between the empirical CDFs of two ascending arrays.

    Both CDFs are evaluated at every point of either array with one vectorised
    ``searchsorted`` each, which handles ties exactly.
    """
    points = np.concatenate((window, sample))
    cdf_window = np.searchsorted(window, points, side="right") / window.size
    cdf_sample = np.searchsorted(sample, points, side="right") / sample.size
    return float(np.max(np.abs(cdf_window - cdf_sample)))


def ks_test(
    window: ArrayLike, reference: FeatureProfile, *, method: KSMethod = "auto"
) -> DriftResult:
    """Two-sided two-sample Kolmogorov-Smirnov test against the profile's sample.

    Parameters
    ----------
    window
        Finite values of a numeric feature.
    reference
        The feature's numeric profile; its stored ``sample`` is the second sample.
    method
        ``"exact"``, ``"asymp"``, or ``"auto"``: exact when both sizes are at most
        10,000, else asymptotic. ``"asymp"`` is the cheap one for streaming checks.

    Returns
    -------
    DriftResult
        ``statistic`` is :math:`D` and ``pvalue`` its two-sided p-value; both equal
        ``scipy.stats.ks_2samp(window, reference.sample, method=method)``.

    Notes
    -----
    With empirical CDFs :math:`F_n` of the window and :math:`G_m` of the sample,

    .. math:: D = \\sup_x |F_n(x) - G_m(x)|.

    The exact p-value is :math:`P(D_{n,m} \\ge D)` under the null, by Hodges'
    lattice-path count [1]_ in the numerically stable form of [2]_, in
    :math:`O(nm / \\gcd(n, m))` time. The asymptotic one is
    :math:`1 - K_{\\lfloor e \\rceil}(D)` with :math:`e = nm / (n + m)`, where
    :math:`K_k` is the one-sample distribution ``scipy.stats.kstwo`` [3]_, evaluated
    by :func:`~detectors._kstwo.kstwo_sf` without scipy's per-element loop. As in
    scipy, ``"exact"`` falls back to the asymptotic value when
    :math:`\\mathrm{lcm}(n, m)` overflows a 32-bit integer or the recursion fails
    (scipy also warns; this function does not, so a daemon's log stays quiet).
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
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    values = numeric_window(window, "ks_test")
    sample = numeric_reference(reference, "ks_test").sample
    statistic = ks_statistic(values, sample)
    return DriftResult(statistic, _pvalue(statistic, values, sample, method))


def asymp_pvalues(statistic: ArrayLike, n1: ArrayLike, n2: ArrayLike) -> FloatArray:
    """Asymptotic two-sided p-values of two-sample statistics, elementwise.

    Equals ``scipy.stats.ks_2samp(..., method="asymp").pvalue`` for statistics
    ``statistic`` of samples of sizes ``n1`` and ``n2`` (arrays broadcast).
    """
    size1, size2 = np.asarray(n1, dtype=np.float64), np.asarray(n2, dtype=np.float64)
    effective_n = np.round(size1 * size2 / (size1 + size2))
    probability = kstwo_sf(np.asarray(statistic, dtype=np.float64), effective_n)
    return np.clip(probability, 0.0, 1.0)


def _pvalue(statistic: float, window: FloatArray, sample: FloatArray, method: KSMethod) -> float:
    n1, n2 = window.size, sample.size
    gcd = math.gcd(n1, n2)
    exact = max(n1, n2) <= EXACT_MAX_N if method == "auto" else method == "exact"
    if exact and n1 // gcd < _INT32_MAX / (n2 // gcd):
        exact_2kssamp = _exact_2kssamp()
        if exact_2kssamp is None:  # pragma: no cover - depends on the scipy release
            from scipy import stats

            return float(stats.ks_2samp(window, sample, method=method).pvalue)
        attempt: Any = exact_2kssamp(n1, n2, gcd, statistic, "two-sided")
        success, _, probability = attempt
        if success:
            return float(np.clip(probability, 0.0, 1.0))
    return float(asymp_pvalues(statistic, n1, n2))


def _exact_2kssamp() -> Any:
    """scipy's exact null distribution of the two-sample statistic (Hodges' lattice-path
    recursion, compiled), which has no public entry point; ``None`` if it moved."""
    try:
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:  # pragma: no cover - depends on the scipy release
        return None
    return _attempt_exact_2kssamp
