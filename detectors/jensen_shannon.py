"""Jensen-Shannon distance between a window and a reference profile."""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from detectors._windows import Window, aligned_counts
from detectors.feature_profile import FeatureProfile
from detectors.result import DriftResult

__all__ = ["jensen_shannon"]


def jensen_shannon(window: Window, reference: FeatureProfile) -> DriftResult:
    """Jensen-Shannon distance (base 2, in [0, 1]) of ``window`` from ``reference``.

    Parameters
    ----------
    window
        Numeric feature: an array of finite numbers. Categorical feature: a sequence
        of labels (:func:`~detectors.profile_builder.to_category`).
    reference
        The feature's profile, binned as in :func:`~detectors.psi.psi`.

    Returns
    -------
    DriftResult
        ``statistic`` is the distance; ``pvalue`` is ``None``. It equals
        ``scipy.spatial.distance.jensenshannon(p, q, base=2)`` for the binned
        proportions.

    Notes
    -----
    With reference and window proportions :math:`p, q` over the same bins and
    :math:`m = (p + q) / 2`,

    .. math:: \\mathrm{JSD}(p, q) = \\sqrt{\\tfrac12 \\mathrm{KL}_2(p \\| m)
              + \\tfrac12 \\mathrm{KL}_2(q \\| m)},

    the square root of the Jensen-Shannon divergence in bits [1]_, which is a
    metric [2]_. It is bounded, 0 for equal and 1 for disjoint distributions,
    and, unlike PSI, needs no smoothing of empty bins.

    References
    ----------
    .. [1] Lin, J. (1991). Divergence measures based on the Shannon entropy.
       *IEEE Trans. Inf. Theory* 37(1), 145-151.
    .. [2] Endres, D. M., Schindelin, J. E. (2003). A new metric for probability
       distributions. *IEEE Trans. Inf. Theory* 49(7), 1858-1860.

    Examples
    --------
    >>> from detectors.profile_builder import build_profile
    >>> profile = build_profile([{"plan": p} for p in ["free"] * 60 + ["pro"] * 40])
    >>> ref = profile.features["plan"]
    >>> jensen_shannon(["free"] * 60 + ["pro"] * 40, ref).statistic
    0.0
    >>> jensen_shannon(["team"] * 10, ref).statistic
    1.0
    """
    expected, observed = aligned_counts(window, reference, "jensen_shannon")
    p = expected / expected.sum()
    q = observed / observed.sum()
    m = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / (2.0 * np.log(2.0))
    return DriftResult(statistic=float(np.sqrt(np.clip(divergence, 0.0, 1.0))))
