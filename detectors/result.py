"""The value every two-sample drift test returns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DriftResult"]


@dataclass(frozen=True)
class DriftResult:
    """Outcome of comparing one window of a feature with its reference.

    Parameters
    ----------
    statistic
        The test's statistic or distance; larger means further from the reference.
    pvalue
        Probability, under the null hypothesis that window and reference come from
        one distribution, of a statistic at least this large. ``None`` for
        distances that have no null distribution (PSI, Jensen-Shannon, Wasserstein).

    Examples
    --------
    >>> DriftResult(statistic=0.12, pvalue=0.03)
    DriftResult(statistic=0.12, pvalue=0.03)
    """

    statistic: float
    pvalue: float | None = None
