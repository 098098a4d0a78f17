"""ADWIN: adaptive windowing (Bifet & Gavaldà, 2007)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.change import _adwin_batch
from detectors.change.base import ChangeDetector, check_int, check_real


class ADWIN(ChangeDetector):
    r"""Adaptive windowing: drop the old part of a window when its mean differs.

    ADWIN keeps a window :math:`W` of recent values, compressed into buckets, and looks
    for a split :math:`W = W_0 \cdot W_1` (older, newer) whose means differ by more
    than chance allows. When one is found the oldest bucket is dropped and the split
    is searched again; the update that dropped anything reports a change.

    Parameters
    ----------
    delta
        Confidence of the cut test, in (0, 1): smaller means fewer false alarms.
    clock
        Look for a cut every ``clock`` updates (1 = every update).
    max_buckets
        Buckets kept of each size before the two oldest are merged (``M`` in the paper).
    min_window_length
        Smallest size of either sub-window at a cut that is tested.
    grace_period
        No cut is tested until the window holds more than this many values.

    Notes
    -----
    For a split with sizes :math:`n_0, n_1`, means :math:`\hat\mu_0, \hat\mu_1`,
    window size :math:`n`, variance :math:`\sigma^2_W` of the whole window,
    :math:`\delta' = \ln(2 \ln n / \delta)` and, with :math:`\ell` the minimum length,
    :math:`1/m = 1/(n_0 - \ell + 1) + 1/(n_1 - \ell + 1)`, a change is declared when

    .. math::

        |\hat\mu_0 - \hat\mu_1| > \sqrt{\tfrac{2}{m}\,\sigma^2_W\,\delta'}
            + \tfrac{2}{3m}\,\delta'.

    The window is stored as in ADWIN2: rows of buckets of :math:`2^i` values, each
    bucket holding its total and its sum of squared deviations, merged with Chan's
    pairwise update, so memory is :math:`O(M \log n)`. Cuts are tested at bucket
    boundaries only, oldest first. As in River 0.26, the update after a detection
    starts from an empty window: the detector is reset rather than trimmed.

    References
    ----------
    A. Bifet and R. Gavaldà, "Learning from time-changing data with adaptive
    windowing", Proc. SIAM International Conference on Data Mining, 2007, pp. 443-448.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.change import ADWIN
    >>> rng = np.random.default_rng(2)
    >>> stream = np.concatenate([rng.normal(0, 1, 1000), rng.normal(2, 1, 1000)])
    >>> adwin = ADWIN()
    >>> for i, x in enumerate(stream):
    ...     adwin.update(x)
    ...     if adwin.drift_detected:
    ...         print(f"change detected at {i}")
    change detected at 1023
    """

    _PARAMS = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self.delta = check_real("delta", delta, 0.0, 1.0)
        self.clock = check_int("clock", clock, 1)
        self.max_buckets = check_int("max_buckets", max_buckets, 1)
        self.min_window_length = check_int("min_window_length", min_window_length, 1)
        self.grace_period = check_int("grace_period", grace_period, 0)
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        # Row i holds the buckets of 2**i values, oldest first: their totals and their
        # sums of squared deviations from the bucket mean.
        self._totals: list[list[float]] = [[]]
        self._squares: list[list[float]] = [[]]
        self._width = 0
        self._total = 0.0
        self._square_sum = 0.0
        self._tick = 0

    @property
    def width(self) -> int:
        """Number of values in the window."""
        return self._width

    @property
    def estimation(self) -> float:
        """Mean of the window (0.0 when it is empty)."""
        return self._total / self._width if self._width else 0.0

    @property
    def variance(self) -> float:
        """Population variance of the window (0.0 when it is empty)."""
        return self._square_sum / self._width if self._width else 0.0

    def _update(self, x: float) -> None:
        if self._drift_detected:
            self._reset()
        self._insert(x)
        self._tick += 1
        detected = False
        if self._tick % self.clock == 0 and self._width > self.grace_period:
            while self._cut_oldest_bucket():
                detected = True
        self._drift_detected = detected

    def _update_many(self, values: npt.NDArray[np.float64]) -> list[int]:
        # Short batches are cheaper through the loop than through numpy.
        if values.size < _adwin_batch.SHORT_BATCH:
            return super()._update_many(values)
        hits = _adwin_batch.run(self, values)
        return super()._update_many(values) if hits is None else hits

    def _insert(self, x: float) -> None:
        self._totals[0].append(x)
        self._squares[0].append(0.0)
        width = self._width + 1
        if width > 1:
            deviation = x - self._total / (width - 1)
            self._square_sum += (width - 1) * deviation * deviation / width
        self._total += x
        self._width = width
        row = 0
        while len(self._totals[row]) > self.max_buckets:
            self._merge_two_oldest(row)
            row += 1

    def _merge_two_oldest(self, row: int) -> None:
        totals, squares = self._totals[row], self._squares[row]
        size = float(1 << row)
        difference = totals[0] / size - totals[1] / size
        square = squares[0] + squares[1] + size * size / (size + size) * difference * difference
        if row + 1 == len(self._totals):
            self._totals.append([])
            self._squares.append([])
        self._totals[row + 1].append(totals[0] + totals[1])
        self._squares[row + 1].append(square)
        del totals[:2], squares[:2]

    def _cut_oldest_bucket(self) -> bool:
        """Scan the splits, oldest first; at the first significant one drop the oldest bucket."""
        n0, n1 = 0, self._width
        total0, total1 = 0.0, self._total
        for row in range(len(self._totals) - 1, -1, -1):
            size = 1 << row
            totals = self._totals[row]
            for k, bucket_total in enumerate(totals):
                n0 += size
                n1 -= size
                total0 += bucket_total
                total1 -= bucket_total
                if row == 0 and k == len(totals) - 1:
                    return False
                shortest = self.min_window_length
                if (
                    n0 >= shortest
                    and n1 >= shortest
                    and self._significant(n0, n1, total0 / n0 - total1 / n1)
                ):
                    self._drop_oldest_bucket()
                    return True
        return False

    def _significant(self, n0: int, n1: int, mean_difference: float) -> bool:
        delta_prime = math.log(2.0 * math.log(self._width) / self.delta)
        shortest = self.min_window_length
        m_recip = 1.0 / (n0 - shortest + 1.0) + 1.0 / (n1 - shortest + 1.0)
        spread = 2.0 * m_recip * (self._square_sum / self._width) * delta_prime
        if spread < 0.0:  # rounding left the window's sum of squares below zero
            return False
        epsilon = math.sqrt(spread) + 2.0 / 3.0 * delta_prime * m_recip
        return abs(mean_difference) > epsilon

    def _drop_oldest_bucket(self) -> None:
        row = len(self._totals) - 1
        size = 1 << row
        bucket_total = self._totals[row].pop(0)
        bucket_square = self._squares[row].pop(0)
        self._width -= size
        self._total -= bucket_total
        gap = bucket_total / size - self._total / self._width
        self._square_sum -= bucket_square + size * self._width * gap * gap / (size + self._width)
        if not self._totals[row] and row > 0:
            self._totals.pop()
            self._squares.pop()

    def _get_state(self) -> dict[str, Any]:
        return {
            "totals": [list(row) for row in self._totals],
            "squares": [list(row) for row in self._squares],
            "width": self._width,
            "total": self._total,
            "square_sum": self._square_sum,
            "tick": self._tick,
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._totals = [[float(v) for v in row] for row in state["totals"]]
        self._squares = [[float(v) for v in row] for row in state["squares"]]
        self._width = int(state["width"])
        self._total = float(state["total"])
        self._square_sum = float(state["square_sum"])
        self._tick = int(state["tick"])
