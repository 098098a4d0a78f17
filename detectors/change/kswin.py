"""KSWIN: Kolmogorov–Smirnov windowing (Raab, Heusinger and Schleif, 2020)."""

from __future__ import annotations

import functools
import random
import warnings
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from detectors.change.base import ChangeDetector, check_int, check_real


@functools.lru_cache(maxsize=4096)
def ks_pvalue(size: int, count: int) -> float:
    """``scipy.stats.ks_2samp``'s p-value for two samples of ``size`` at distance count/size.

    For equal sizes up to 10,000 the p-value depends only on the distance, so it is
    computed once on two shifted ranges whose ECDFs differ by exactly ``count / size``.
    """
    from scipy import stats  # imported on first use (about 45 MiB): KSWIN is optional

    sample = np.arange(size, dtype=np.float64)
    with warnings.catch_warnings():  # scipy warns when it falls back to the asymptotic form
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return float(stats.ks_2samp(sample, sample + count, method="auto").pvalue)


@functools.lru_cache(maxsize=256)
def critical_count(size: int, alpha: float) -> int:
    """Smallest ECDF distance, in counts, that KSWIN reports: p-value <= alpha and D > 0.1."""
    low, high = 0, size + 1  # the p-value does not increase with the distance
    while low < high:
        middle = (low + high) // 2
        if ks_pvalue(size, middle) <= alpha:
            high = middle
        else:
            low = middle + 1
    while low <= size and not low / size > 0.1:
        low += 1
    return low


class KSWIN(ChangeDetector):
    r"""Kolmogorov–Smirnov windowing: recent values against a sample of older ones.

    Parameters
    ----------
    alpha
        Significance level of the Kolmogorov–Smirnov test, in (0, 1).
    window_size
        Number of values in the sliding window :math:`\Psi`.
    stat_size
        Size :math:`r` of both compared samples; at most half of ``window_size``.
    seed
        Seed of the sampling; ``None`` draws one from the operating system.

    Notes
    -----
    Once the window holds ``window_size`` values, its last :math:`r` values form
    :math:`R` and :math:`r` values drawn without replacement from the older part form
    :math:`W`. With :math:`D = \sup_t |F_R(t) - F_W(t)|` the two-sample statistic, a
    change is reported when the two-sided p-value of :math:`D` (``scipy.stats.ks_2samp``
    with ``method="auto"``, exact for :math:`r \le 10\,000`) is at most :math:`\alpha`
    and :math:`D > 0.1`. The paper's asymptotic rule is
    :math:`D > \sqrt{-\ln(\alpha)/r}`. The update after a detection starts afresh,
    with the sampler re-seeded.

    The sample is drawn with ``random.Random(seed).sample``, as River does, so the
    detections equal River 0.26's for the same seed. Since the p-value of equal-sized
    samples is a function of :math:`D` alone, it is computed once per distance:
    the test is one comparison of integer counts.

    References
    ----------
    C. Raab, M. Heusinger and F.-M. Schleif, "Reactive soft prototype computing for
    concept drift streams", Neurocomputing 416, 2020, pp. 340-351.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.change import KSWIN
    >>> rng = np.random.default_rng(2)
    >>> stream = np.concatenate([rng.normal(0, 1, 1000), rng.normal(2, 1, 1000)])
    >>> kswin = KSWIN(alpha=0.0001, seed=42)
    >>> for i, x in enumerate(stream):
    ...     kswin.update(x)
    ...     if kswin.drift_detected:
    ...         print(f"change detected at {i}")
    change detected at 1022
    """

    _PARAMS = ("alpha", "window_size", "stat_size", "seed")

    def __init__(
        self,
        alpha: float = 0.005,
        window_size: int = 100,
        stat_size: int = 30,
        seed: int | None = None,
    ) -> None:
        self.alpha = check_real("alpha", alpha, 0.0, 1.0)
        self.window_size = check_int("window_size", window_size, 2)
        self.stat_size = check_int("stat_size", stat_size, 1)
        if not 2 * self.stat_size <= self.window_size:
            raise ValueError(
                f"stat_size must be at most window_size // 2 = {self.window_size // 2}, "
                f"got {stat_size!r}"
            )
        self.seed = None if seed is None else check_int("seed", seed, 0)
        self._critical = critical_count(self.stat_size, self.alpha)
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._window: deque[float] = deque(maxlen=self.window_size)
        self._rng = random.Random(self.seed)
        self._count = 0

    @property
    def statistic(self) -> float:
        """The last Kolmogorov–Smirnov distance :math:`D` (0.0 before the first test)."""
        return self._count / self.stat_size

    @property
    def p_value(self) -> float:
        """The p-value of :attr:`statistic`."""
        return ks_pvalue(self.stat_size, self._count)

    def _update(self, x: float) -> None:
        if self._drift_detected:
            self._reset()
        self._window.append(x)
        if len(self._window) < self.window_size:
            return
        older = self.window_size - self.stat_size
        picks = self._rng.sample(range(older), self.stat_size)
        window = np.fromiter(self._window, dtype=np.float64, count=self.window_size)
        sampled = np.sort(window[picks])
        recent = np.sort(window[older:])
        points = np.concatenate([sampled, recent])
        gaps = np.searchsorted(sampled, points, "right") - np.searchsorted(recent, points, "right")
        self._count = int(np.abs(gaps).max())
        self._drift_detected = self._count >= self._critical

    def _get_state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "window": list(self._window),
            "rng": {"version": version, "internal": list(internal), "gauss": gauss},
            "count": self._count,
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._window = deque((float(v) for v in state["window"]), maxlen=self.window_size)
        rng = state["rng"]
        self._rng.setstate((rng["version"], tuple(rng["internal"]), rng["gauss"]))
        self._count = int(state["count"])
