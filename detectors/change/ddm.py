"""DDM: the drift detection method for a stream of errors (Gama et al., 2004)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from detectors.change.base import ChangeDetector, check_int, check_real, encode_float


class DDM(ChangeDetector):
    r"""Drift detection method: a rise of the error rate above its best level.

    The input is a stream of 0/1 values: 1 for an error (a wrong prediction), 0 for a
    correct one.

    Parameters
    ----------
    warm_start
        Values read before a change or a warning can be reported.
    warning_threshold
        Standard deviations above the best level that raise a warning.
    drift_threshold
        Standard deviations above the best level that report a change; at least
        ``warning_threshold``.

    Notes
    -----
    After :math:`i` values with error rate :math:`p_i`, the binomial standard deviation
    of the rate is :math:`s_i = \sqrt{p_i (1 - p_i) / i}`. Once :math:`i >` ``warm_start``
    the detector records :math:`p_{min}, s_{min}` where :math:`p_i + s_i` is lowest, and

    .. math::

        p_i + s_i > p_{min} + w \, s_{min} \Rightarrow \text{warning}, \qquad
        p_i + s_i > p_{min} + d \, s_{min} \Rightarrow \text{change},

    with :math:`w, d` the warning and drift thresholds (2 and 3: about 95% and 99%
    one-sided confidence under the normal approximation). The update after a
    detection starts afresh.

    References
    ----------
    J. Gama, P. Medas, G. Castillo and P. Rodrigues, "Learning with drift detection",
    Brazilian Symposium on Artificial Intelligence (SBIA), 2004, pp. 286-295.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.change import DDM
    >>> rng = np.random.default_rng(2)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.3])
    >>> ddm = DDM()
    >>> for i, x in enumerate(errors):
    ...     ddm.update(x)
    ...     if ddm.drift_detected:
    ...         print(f"change detected at {i}")
    change detected at 89
    change detected at 1078

    The first detection is a false alarm: DDM compares with the best rate seen,
    which is noisy just after the warm start.
    """

    _PARAMS = ("warm_start", "warning_threshold", "drift_threshold")
    _BINARY = True

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        self.warm_start = check_int("warm_start", warm_start, 0)
        self.warning_threshold = check_real("warning_threshold", warning_threshold, 0.0)
        self.drift_threshold = check_real(
            "drift_threshold", drift_threshold, self.warning_threshold, low_open=False
        )
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._warning_detected = False
        self._n = 0
        self._rate = 0.0
        self._p_min = math.nan
        self._s_min = math.nan
        self._ps_min = math.inf

    @property
    def warning_detected(self) -> bool:
        """Whether the last update left the detector in the warning zone."""
        return self._warning_detected

    @property
    def estimation(self) -> float:
        """Error rate since the start or the last detection."""
        return self._rate

    def _update(self, x: float) -> None:
        if self._drift_detected:
            self._reset()
        self._n += 1
        self._rate += (1.0 / self._n) * (x - self._rate)
        p = self._rate
        s = math.sqrt(p * (1 - p) / self._n)
        if self._n <= self.warm_start:
            return
        if p + s <= self._ps_min:
            self._p_min, self._s_min, self._ps_min = p, s, p + s
        self._warning_detected = p + s > self._p_min + self.warning_threshold * self._s_min
        if p + s > self._p_min + self.drift_threshold * self._s_min:
            self._drift_detected = True
            self._warning_detected = False

    def _get_state(self) -> dict[str, Any]:
        return {
            "warning_detected": self._warning_detected,
            "n": self._n,
            "rate": self._rate,
            "p_min": encode_float(self._p_min),
            "s_min": encode_float(self._s_min),
            "ps_min": encode_float(self._ps_min),
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._warning_detected = bool(state["warning_detected"])
        self._n = int(state["n"])
        self._rate = float(state["rate"])
        self._p_min = float(state["p_min"])
        self._s_min = float(state["s_min"])
        self._ps_min = float(state["ps_min"])
