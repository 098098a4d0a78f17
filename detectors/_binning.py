"""Vectorised helpers shared by profiles and tests: quantile cuts, bin counts, subsampling.

Bins are right-closed: with interior cut points ``c_0 < c_1 < ... < c_{k-1}`` bin 0
is ``(-inf, c_0]``, bin ``i`` is ``(c_{i-1}, c_i]`` and bin ``k`` is ``(c_{k-1}, +inf)``.
The outer bins are open so that window values beyond the reference's range are
counted, not dropped.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["bin_counts", "largest_remainder", "quantile_cuts", "subsample"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def quantile_cuts(values: FloatArray, n_bins: int) -> FloatArray:
    """Interior cut points at the ``j / n_bins`` quantiles, ties collapsed.

    Heavily tied data (a constant, a 0/1 flag) gives fewer than ``n_bins - 1``
    distinct cuts and so fewer bins; a non-empty input always gives at least one.
    """
    probabilities = np.arange(1, n_bins, dtype=np.float64) / n_bins
    return np.unique(np.quantile(values, probabilities)).astype(np.float64)


def bin_counts(sorted_values: FloatArray, cuts: FloatArray) -> IntArray:
    """Counts of ``sorted_values`` (ascending) in the right-closed bins of ``cuts``."""
    at_or_below = np.searchsorted(sorted_values, cuts, side="right")
    edges = np.concatenate(([0], at_or_below, [sorted_values.size]))
    return np.diff(edges).astype(np.int64)


def subsample(sorted_values: FloatArray, size: int, rng: np.random.Generator) -> FloatArray:
    """A sorted simple random sample of ``size`` values without replacement."""
    if sorted_values.size <= size:
        return sorted_values
    chosen = np.sort(rng.choice(sorted_values.size, size=size, replace=False))
    return sorted_values[chosen]


def largest_remainder(estimates: FloatArray, total: int) -> IntArray:
    """Round non-negative ``estimates`` to integers that sum to ``total``.

    Hare's largest-remainder rule; integral estimates that already sum to
    ``total`` come back unchanged.
    """
    floors = np.floor(estimates).astype(np.int64)
    short = total - int(floors.sum())
    if short > 0:
        # Stable sort: equal remainders go to the lower bin, deterministically.
        order = np.argsort(-(estimates - floors), kind="stable")
        floors[order[:short]] += 1
    return floors
