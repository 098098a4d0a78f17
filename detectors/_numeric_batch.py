"""PSI and Kolmogorov-Smirnov for many numeric features of one window at once.

The reference side is laid out once by :meth:`NumericBatch.build`; :meth:`NumericBatch.run`
then does per window one 2-D sort, one ``searchsorted`` into each feature's reference
sample and one small ``searchsorted`` of the bin cuts into each sorted row, and
everything else as whole-matrix numpy operations over ``(features, rows)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from detectors._binning import FloatArray, IntArray
from detectors.feature_profile import NumericProfile
from detectors.ks import KSMethod, _pvalue, asymp_pvalues

__all__ = ["NumericBatch", "NumericOutcome"]


@dataclass(frozen=True)
class NumericOutcome:
    """Per-feature results of one window, arrays aligned with the batch's features."""

    count: IntArray
    missing_ratio: FloatArray
    outside_ratio: FloatArray
    psi: FloatArray
    statistic: FloatArray
    pvalue: FloatArray


@dataclass(frozen=True, eq=False)
class NumericBatch:
    """Reference-side tables of numeric features, built once, read by every window.

    ``needles[f]`` holds ``[below(min), cuts..., cuts[-1] (padding)..., max]``, with
    ``below(min)`` the float just under the reference minimum, so that one
    ``searchsorted(row, needles[f], "right")`` counts the window values under the
    reference range, at or below each cut, and at or below the maximum. Padding
    repeats the last cut, which yields empty bins before the last one; ``ref_share``
    has zero counts there too, both floor to ``epsilon``, and the PSI term is 0.
    """

    samples: tuple[FloatArray, ...]
    sizes: FloatArray
    needles: FloatArray
    ref_share: FloatArray
    flat_sample: FloatArray
    offsets: IntArray
    epsilon: float
    method: KSMethod

    @classmethod
    def build(
        cls, features: Sequence[NumericProfile], epsilon: float, method: KSMethod
    ) -> NumericBatch:
        """Lay out the reference side of ``features`` (each with ``count > 0``)."""
        width = max((f.cuts.size for f in features), default=0)
        needles = np.empty((len(features), width + 2))
        ref_counts = np.zeros((len(features), width + 2))
        for row, feature in enumerate(features):
            cuts, k = feature.cuts, feature.cuts.size
            assert feature.minimum is not None and feature.maximum is not None
            with np.errstate(over="ignore"):  # below -max is -inf, still right
                needles[row, 0] = np.nextafter(feature.minimum, -np.inf)
            needles[row, 1 : k + 1] = cuts
            # Without cuts there is one bin; +inf padding keeps every value in bin 0.
            needles[row, k + 1 : width + 1] = cuts[-1] if k else np.inf
            needles[row, width + 1] = feature.maximum
            ref_counts[row, :k] = feature.bin_counts[:k]
            ref_counts[row, width if k else 0] = feature.bin_counts[k]
        totals = np.maximum(ref_counts.sum(axis=1, keepdims=True), 1.0)
        samples = tuple(np.ascontiguousarray(f.sample) for f in features)
        sizes = np.array([s.size for s in samples], dtype=np.float64)
        return cls(
            samples=samples,
            sizes=sizes,
            needles=needles,
            ref_share=np.maximum(ref_counts / totals, epsilon)[:, : width + 1],
            flat_sample=np.concatenate(samples) if samples else np.empty(0),
            offsets=(np.cumsum(sizes) - sizes).astype(np.int64),
            epsilon=epsilon,
            method=method,
        )

    def run(self, columns: Sequence[ArrayLike]) -> NumericOutcome:
        """Results for one window; ``columns[f]`` is feature ``f``'s values, NaN = missing."""
        arrays = [np.asarray(column, dtype=np.float64) for column in columns]
        lengths = np.array([a.size for a in arrays], dtype=np.float64)
        width = max(int(lengths.max(initial=0)), 2)  # two columns keep the maxima defined
        values = np.full((len(arrays), width), np.nan)
        for row, array in enumerate(arrays):
            values[row, : array.size] = array
        values.sort(axis=1)  # NaN (missing and padding) last
        count = np.count_nonzero(values == values, axis=1)
        right = np.empty(values.shape, dtype=np.int64)
        hits = np.empty(self.needles.shape, dtype=np.int64)
        for row, sample in enumerate(self.samples):
            right[row] = np.searchsorted(sample, values[row], side="right")
            hits[row] = np.searchsorted(values[row], self.needles[row], side="right")
        statistic = self._statistic(values, right, count)
        seen = np.maximum(count, 1)
        bins = np.diff(hits[:, 1:-1], axis=1, prepend=0, append=count[:, None])
        share = np.maximum(bins / seen[:, None], self.epsilon)
        psi = np.sum((share - self.ref_share) * np.log(share / self.ref_share), axis=1)
        outside = (hits[:, 0] + count - hits[:, -1]) / seen
        pvalue = self._pvalues(statistic, values, count)
        empty = count == 0
        rows = np.where(lengths > 0, lengths, 1.0)
        return NumericOutcome(
            count=count,
            missing_ratio=(lengths - count) / rows,
            outside_ratio=np.where(empty, np.nan, outside),
            psi=np.where(empty, np.nan, psi),
            statistic=np.where(empty, np.nan, statistic),
            pvalue=np.where(empty, np.nan, pvalue),
        )

    def _statistic(self, values: FloatArray, right: IntArray, count: IntArray) -> FloatArray:
        seen = np.maximum(count, 1)[:, None]
        rank = np.arange(1, values.shape[1] + 1, dtype=np.int64)
        # Missing values sit past count with right == m: capping the rank there
        # makes their terms 1 - 1 = 0, and D >= 0 anyway.
        window_cdf = np.minimum(rank, seen) / seen
        sample_cdf = right / self.sizes[:, None]
        above = np.max(window_cdf - sample_cdf, axis=1)
        # A window value tied with a sample value needs the left limit separately;
        # a false alarm from the neighbouring feature's last value only costs a search.
        tied = (self.flat_sample[right + (self.offsets - 1)[:, None]] == values).any(axis=1)
        for row in np.flatnonzero(tied):
            left = np.searchsorted(self.samples[row], values[row], side="left")
            sample_cdf[row] = left / self.sizes[row]
        below = np.maximum(sample_cdf[:, 0], np.max(sample_cdf[:, 1:] - window_cdf[:, :-1], axis=1))
        return np.maximum(above, below)

    def _pvalues(self, statistic: FloatArray, values: FloatArray, count: IntArray) -> FloatArray:
        present = count > 0
        pvalue = np.full(statistic.size, np.nan)
        if self.method == "asymp":
            pvalue[present] = asymp_pvalues(statistic[present], count[present], self.sizes[present])
            return pvalue
        for row in np.flatnonzero(present):
            window = values[row, : count[row]]
            pvalue[row] = _pvalue(float(statistic[row]), window, self.samples[row], self.method)
        return pvalue
