"""Population Stability Index of a window against a reference profile."""

from __future__ import annotations

import numpy as np

from detectors._windows import Window, aligned_counts, check_positive
from detectors.feature_profile import FeatureProfile
from detectors.result import DriftResult

__all__ = ["psi"]


def psi(window: Window, reference: FeatureProfile, *, epsilon: float = 1e-4) -> DriftResult:
    """Population Stability Index (PSI) of ``window`` against ``reference``.

    Parameters
    ----------
    window
        Numeric feature: an array of finite numbers. Categorical feature: a sequence
        of labels (:func:`~detectors.profile_builder.to_category`).
    reference
        The feature's profile; numeric profiles bin by their quantile cuts,
        categorical ones by their kept categories plus ``"__other__"``.
    epsilon
        Floor for empty bins' proportions, in (0, 1); keeps the log finite.

    Returns
    -------
    DriftResult
        ``statistic`` is the PSI (>= 0); ``pvalue`` is ``None``.

    Notes
    -----
    With reference proportions :math:`p_i` and window proportions :math:`q_i` over
    the same bins, each floored at :math:`\\epsilon`,

    .. math:: \\mathrm{PSI} = \\sum_i (q_i - p_i) \\ln(q_i / p_i),

    the symmetrised Kullback-Leibler divergence :math:`KL(q\\|p) + KL(p\\|q)`.
    Reference bins are the reference's deciles by default, so each :math:`p_i` is
    about 0.1; the outer bins are open, so window values beyond the reference's
    range land in them. Window labels the reference never kept count in
    ``"__other__"``, whose reference share may be 0 and is then floored: a new
    category raises the PSI sharply, which is the point. Conventional readings are
    < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift [1]_. Under no drift,
    with :math:`B` bins, a window of :math:`n` and a reference of :math:`N` values,
    PSI is about :math:`(1/n + 1/N)\\,\\chi^2_{B-1}` [2]_ (mean
    :math:`(B - 1)(1/n + 1/N)`), so small windows need higher thresholds.

    References
    ----------
    .. [1] Siddiqi, N. (2006). *Credit Risk Scorecards*. Wiley, pp. 136-137.
    .. [2] Yurdakul, B. (2018). *Statistical Properties of Population Stability
       Index*. Dissertation, Western Michigan University.

    Examples
    --------
    >>> from detectors.profile_builder import build_profile
    >>> rng = np.random.default_rng(7)
    >>> profile = build_profile({"x": v} for v in rng.normal(size=5000).tolist())
    >>> ref = profile.features["x"]
    >>> round(psi(rng.normal(size=1000), ref).statistic, 3)
    0.01
    >>> round(psi(rng.normal(0.5, 1.0, size=1000), ref).statistic, 3)
    0.233
    """
    check_positive("epsilon", epsilon, below_one=True)
    expected, observed = aligned_counts(window, reference, "psi")
    p = np.maximum(expected / expected.sum(), epsilon)
    q = np.maximum(observed / observed.sum(), epsilon)
    return DriftResult(statistic=float(np.sum((q - p) * np.log(q / p))))
