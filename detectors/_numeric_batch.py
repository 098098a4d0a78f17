"""PSI and Kolmogorov-Smirnov for many numeric features of one window at once.

The reference side is laid out once by :meth:`NumericBatch.build`; :meth:`NumericBatch.run`
then does per window one 2-D sort and one small ``searchsorted`` of the bin cuts into
each sorted row. The KS statistic reads bounds on the reference ECDF from a grid
(:class:`_Grid`), first at the ends of blocks of ranks, then at the ranks of the blocks
that could reach the maximum, and searches the reference sample only where a rank's
bounds could; everything is whole-array numpy over all features at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from detectors._binning import FloatArray, IntArray
from detectors.feature_profile import NumericProfile
from detectors.ks import KSMethod, _pvalue, asymp_pvalues

__all__ = ["NumericBatch", "NumericOutcome"]

BLOCK = 8  # window ranks per block of the KS statistic's first screen
Counts = np.ndarray[Any, np.dtype[np.int32]]  # counts of reference values (< 2**31)


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
    epsilon: float
    method: KSMethod
    grid: _Grid

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
            epsilon=epsilon,
            method=method,
            grid=_Grid.build(samples),
        )

    def run(self, columns: Sequence[ArrayLike]) -> NumericOutcome:
        """Results for one window; ``columns[f]`` is feature ``f``'s values, NaN = missing."""
        arrays = [np.asarray(column, dtype=np.float64) for column in columns]
        lengths = np.array([a.size for a in arrays], dtype=np.float64)
        # Two columns keep the maxima defined; whole blocks of ranks for _statistic.
        width = max(int(lengths.max(initial=0)), 2)
        width += -width % BLOCK
        values = np.full((len(arrays), width), np.nan)
        if arrays and all(a.size == arrays[0].size for a in arrays):
            values[:, : arrays[0].size] = arrays  # one copy instead of one per row
        else:
            for row, array in enumerate(arrays):
                values[row, : array.size] = array
        values.sort(axis=1)  # NaN (missing and padding) last
        count = np.count_nonzero(values == values, axis=1)
        hits = np.empty(self.needles.shape, dtype=np.int64)
        for row, needles in enumerate(self.needles):
            hits[row] = values[row].searchsorted(needles, side="right")
        statistic = self._statistic(values, count)
        seen = np.maximum(count, 1)
        # Window values per bin: differences of the counts at or below each cut, from 0
        # below the first to the count above the last.
        below = hits[:, :-1].copy()
        below[:, 0] = 0
        bins = np.empty_like(below)
        np.subtract(below[:, 1:], below[:, :-1], out=bins[:, :-1])
        np.subtract(count, below[:, -1], out=bins[:, -1])
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

    def _statistic(self, values: FloatArray, count: IntArray) -> FloatArray:
        """KS D of each row, from bounds on the reference ECDF (:class:`_Grid`): first
        per block of ``BLOCK`` ranks, then per rank in the blocks that could reach the
        maximum, the exact counts searched only where a rank's bound could.

        In a block of ranks ``i`` to ``j`` (values ``x_i <= ... <= x_j``) the terms
        ``k/n - G(x_k)`` are at most ``j/n - G(x_i)`` and ``G(x_k^-) - (k - 1)/n`` at
        most ``G(x_j) - (i - 1)/n``, the same float operations on the grid's bounds of
        the two ends; the ends' own terms, bounded below, give a floor ``least`` on D.
        Every term that can reach D passes both screens, so D is the largest exact term.
        """
        block = BLOCK
        seen = np.maximum(count, 1)[:, None]
        sizes = self.sizes[:, None]
        # Ranks of each block's first value and of its last one present (missing values
        # sort last; blocks that start past them are left out).
        first = np.arange(1, values.shape[1] + 1, block, dtype=np.int64)
        last = np.minimum(first + (block - 1), seen)
        valid = first <= count[:, None]
        ends = np.concatenate((values[:, ::block], np.take_along_axis(values, last - 1, 1)), 1)
        low, high = self.grid.counts(ends, np.arange(values.shape[0])[:, None])
        low_cdf, high_cdf = low / sizes, high / sizes
        blocks = first.size
        low_first, high_first = low_cdf[:, :blocks], high_cdf[:, :blocks]
        low_last, high_last = low_cdf[:, blocks:], high_cdf[:, blocks:]
        before = (first - 1) / seen  # (i - 1)/n at each block's first value
        at_last = last / seen
        # Lower bounds on the ends' terms; D >= 0 covers rows without values.
        least = np.maximum(at_last - high_last, low_first - before)
        np.maximum(least, first / seen - high_first, out=least)
        np.maximum(least, low_last - (last - 1) / seen, out=least)
        least = np.where(valid, least, 0.0).max(axis=1)
        floor = least[:, None]
        reach = (at_last - low_first >= floor) | (high_last - before >= floor)
        reach &= valid
        rows, starts = np.nonzero(reach)
        # The ranks of those blocks, one by one.
        rows = np.repeat(rows, block)
        cols = (starts[:, None] * block + np.arange(block)).ravel()
        index = cols + 1
        n = seen[rows, 0]
        kept = index <= count[rows]
        x = values[rows, cols]
        low_count, high_count = self.grid.counts(x, rows)
        size = self.sizes[rows]
        low_k, high_k = low_count / size, high_count / size
        at = np.minimum(index, n) / n
        previous = np.minimum(index - 1, n) / n
        # The floor raised by these ranks' own lower bounds.
        bounds = np.where(kept, np.maximum(at - high_k, low_k - previous), 0.0)
        np.maximum.at(least, rows, bounds)
        floor_k = least[rows]
        kept &= (at - low_k >= floor_k) | (high_k - previous >= floor_k)
        pick = np.flatnonzero(kept)
        rows, x, index, n, size = rows[pick], x[pick], index[pick], n[pick], size[pick]
        right, left = self.grid.exact(x, rows, low_count[pick], high_count[pick])
        previous = np.where(index > 1, np.minimum(index - 1, n) / n, 0.0)
        terms = np.maximum(np.minimum(index, n) / n - right / size, left / size - previous)
        np.maximum.at(least, rows, terms)
        return least

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


@dataclass(frozen=True, eq=False)
class _Grid:
    """Bounds on the count of reference values at or below any value, without a search.

    Each feature's range is cut into ``CELLS`` equal cells; ``cell(x)`` is a monotone
    float expression of ``x``, so a reference value in a lower cell than ``x`` is below
    it and one in a higher cell above it: both counts of values at or below ``x`` and
    below ``x`` lie between ``before[cell(x)]`` and ``before[cell(x) + 1]``, the
    reference values in the cells under ``cell(x)`` and up to it. A feature whose values
    are all equal gets bounds 0 and m, which always leaves the search to decide.
    """

    low: FloatArray
    scale: FloatArray
    constant: bool
    before: Counts
    stride: int
    flat_sample: FloatArray
    offsets: IntArray

    CELLS = 8192

    @classmethod
    def build(cls, samples: Sequence[FloatArray]) -> _Grid:
        cells = cls.CELLS
        low = np.array([s[0] if s.size else 0.0 for s in samples])
        high = np.array([s[-1] if s.size else 0.0 for s in samples])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scale = np.where(high > low, cells / (high - low), 0.0)
        scale[~np.isfinite(scale)] = 0.0
        constant = bool((scale == 0.0).any())
        empty = np.empty(0, dtype=np.int64)
        grid = cls(low, scale, constant, empty.astype(np.int32), cells + 3, np.empty(0), empty)
        # Counts fit in 32 bits (a sample holds far fewer values): half the memory.
        table = np.empty((len(samples), cells + 3), dtype=np.int32)
        edges = np.arange(cells + 3)
        for row, sample in enumerate(samples):
            if scale[row] == 0.0:  # one cell in the middle holds every value
                table[row] = np.where(edges <= cells // 2 + 1, 0, sample.size)
                continue
            cell = grid._cells(sample, np.full(sample.size, row))
            table[row] = np.searchsorted(cell, edges, side="left")
        sizes = np.array([s.size for s in samples], dtype=np.int64)
        flat = np.concatenate(samples) if samples else np.empty(0)
        offsets = np.cumsum(sizes) - sizes
        return cls(low, scale, constant, table, cells + 3, flat, offsets)

    def _cells(self, values: FloatArray, rows: IntArray) -> IntArray:
        """Cell of each value, 0 (below the range) to CELLS + 1, NaN in the top cell;
        ``rows`` (broadcast with ``values``) are their features."""
        scale = self.scale[rows]
        with np.errstate(invalid="ignore", over="ignore"):
            position = values - self.low[rows]
            position *= scale
            np.fmin(position, self.CELLS, out=position)
            np.fmax(position, -1.0, out=position)
        np.floor(position, out=position)
        cell = position.astype(np.int64)
        cell += 1
        if self.constant:  # all reference values equal: one middle cell
            cell[np.broadcast_to(scale == 0.0, cell.shape)] = self.CELLS // 2 + 1
        return cell

    def counts(self, values: FloatArray, rows: IntArray) -> tuple[Counts, Counts]:
        """Lower and upper bounds on the reference values at or below, and below, each
        value; ``rows`` (broadcast with ``values``) are their features."""
        cell = self._cells(values, rows)
        cell += rows * self.stride
        flat = self.before.ravel()
        low = np.take(flat, cell)
        cell += 1
        return low, np.take(flat, cell)

    def exact(
        self, values: FloatArray, rows: IntArray, low: Counts, high: Counts
    ) -> tuple[IntArray, IntArray]:
        """Reference values at or below, and below, ``values[k]`` of feature ``rows[k]``,
        given that both counts lie in ``[low[k], high[k]]`` (as :meth:`counts` bounds them)."""
        steps = np.arange(int((high - low).max(initial=0)))
        index = (self.offsets[rows] + low)[:, None] + steps
        np.minimum(index, max(self.flat_sample.size - 1, 0), out=index)
        inside = steps < (high - low)[:, None]
        ahead = np.take(self.flat_sample, index)
        column = values[:, None]
        right = low + np.count_nonzero((ahead <= column) & inside, axis=1)
        left = low + np.count_nonzero((ahead < column) & inside, axis=1)
        return right, left
