"""Chi-square test of homogeneity of a categorical window against reference counts."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.special import chdtrc

from detectors._binning import IntArray
from detectors._windows import aligned_counts, categorical_reference
from detectors.feature_profile import FeatureProfile
from detectors.result import DriftResult

__all__ = ["chi2_test", "contingency_statistic"]


def chi2_test(
    window: Iterable[str], reference: FeatureProfile, *, correction: bool = True
) -> DriftResult:
    """Pearson chi-square test that window and reference share category proportions.

    Parameters
    ----------
    window
        Labels of a categorical feature (:func:`~detectors.profile_builder.to_category`).
    reference
        The feature's categorical profile.
    correction
        Apply Yates' continuity correction when the table has one degree of
        freedom (two categories), as ``scipy.stats.chi2_contingency`` does by default.

    Returns
    -------
    DriftResult
        ``statistic`` and ``pvalue`` equal those of
        ``scipy.stats.chi2_contingency(table, correction=correction)`` on the table
        described in Notes.

    Notes
    -----
    The table has two rows, reference counts and window counts, and one column per
    category the reference kept, then ``"__other__"``, which also takes every window
    label the reference never kept; columns empty in both rows are dropped. With row
    totals :math:`R_r`, column totals :math:`C_c` and grand total :math:`N`, the
    expected counts are :math:`E_{rc} = R_r C_c / N` and

    .. math:: X^2 = \\sum_{r,c} \\frac{(O_{rc} - E_{rc})^2}{E_{rc}}
              \\sim \\chi^2_{(2 - 1)(k - 1)}

    under the null for :math:`k` columns [1]_. With one degree of freedom and
    ``correction``, each :math:`|O - E|` first shrinks by up to 0.5 [2]_. A single
    column gives :math:`X^2 = 0`, :math:`p = 1`.

    This is the contingency (homogeneity) test, not the goodness-of-fit test
    ``scipy.stats.chisquare`` with the reference proportions taken as exact: the
    reference is itself a finite sample, and goodness-of-fit ignores its sampling
    noise, which makes p-values too small when the reference is not much larger
    than the window, i.e. more false alarms. For a reference much larger than the
    window the two agree. The :math:`\\chi^2` approximation wants expected counts
    of about 5 or more; the ``top_k`` cap with ``"__other__"`` keeps rare
    categories from spreading thin.

    References
    ----------
    .. [1] Pearson, K. (1900). On the criterion that a given system of deviations
       from the probable ... *Philosophical Magazine* 5(50), 157-175.
    .. [2] Yates, F. (1934). Contingency tables involving small numbers and the
       chi-square test. *Suppl. J. R. Stat. Soc.* 1(2), 217-235.

    Examples
    --------
    >>> from detectors.profile_builder import build_profile
    >>> profile = build_profile([{"plan": p} for p in ["free"] * 600 + ["pro"] * 400])
    >>> ref = profile.features["plan"]
    >>> result = chi2_test(["free"] * 50 + ["pro"] * 50, ref)
    >>> round(result.statistic, 2), round(result.pvalue, 3)
    (3.36, 0.067)
    >>> chi2_test(["free"] * 30 + ["pro"] * 50 + ["team"] * 20, ref).pvalue < 1e-6
    True
    """
    categorical_reference(reference, "chi2_test")
    expected_row, observed_row = aligned_counts(window, reference, "chi2_test")
    statistic, dof = contingency_statistic(expected_row, observed_row, correction)
    if dof == 0:
        return DriftResult(statistic=0.0, pvalue=1.0)
    return DriftResult(statistic, float(chdtrc(dof, statistic)))  # scipy.stats.chi2.sf


def contingency_statistic(
    expected_row: IntArray, observed_row: IntArray, correction: bool
) -> tuple[float, int]:
    """Pearson's :math:`X^2` of the two-row table and its degrees of freedom (see chi2_test)."""
    table = np.vstack((expected_row, observed_row)).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    dof = table.shape[1] - 1
    if dof == 0:
        return 0.0, 0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if dof == 1 and correction:
        gap = expected - table
        table = table + np.sign(gap) * np.minimum(0.5, np.abs(gap))
    return float(np.sum((table - expected) ** 2 / expected)), dof
