"""EDDM: the early drift detection method (Baena-García et al., 2006)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.change.base import ChangeDetector, check_int, check_real


class EDDM(ChangeDetector):
    r"""Early drift detection method: errors coming closer together than they used to.

    The input is a stream of 0/1 values: 1 for an error, 0 for a correct prediction.

    Parameters
    ----------
    warm_start
        Values, and errors, read before a change or a warning can be reported.
    alpha
        Warning level in (0, 1]: a warning when the ratio below falls under it.
    beta
        Drift level in (0, ``alpha``]: a change when the ratio falls under it.

    Notes
    -----
    Let :math:`p'_i` and :math:`s'_i` be the mean and the sample standard deviation of
    the distances (in values read) between consecutive errors, updated at each error.
    The detector records the largest :math:`p'_{max} + 2 s'_{max}` seen, and once more
    than ``warm_start`` values and errors have been read it compares

    .. math::

        r_i = \frac{p'_i + 2 s'_i}{p'_{max} + 2 s'_{max}}: \qquad
        r_i < \alpha \Rightarrow \text{warning}, \qquad r_i < \beta \Rightarrow \text{change}.

    An error at a new maximum leaves the warning flag as it was. The update after a
    detection starts afresh. Defaults :math:`\alpha = 0.95, \beta = 0.9` are the paper's.

    References
    ----------
    M. Baena-García, J. del Campo-Ávila, R. Fidalgo, A. Bifet, R. Gavaldà and
    R. Morales-Bueno, "Early drift detection method", Fourth International Workshop on
    Knowledge Discovery from Data Streams, 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.change import EDDM
    >>> rng = np.random.default_rng(2)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.3])
    >>> eddm = EDDM(alpha=0.8, beta=0.7)
    >>> for i, x in enumerate(errors):
    ...     eddm.update(x)
    ...     if eddm.drift_detected:
    ...         print(f"change detected at {i}")
    change detected at 290
    change detected at 1062

    The first detection is a false alarm. With the paper's levels (the defaults) EDDM
    fires about every 100 errors on this stream: it is meant for gradual changes
    and sensitive.
    """

    _PARAMS = ("warm_start", "alpha", "beta")
    _BINARY = True

    def __init__(self, warm_start: int = 30, alpha: float = 0.95, beta: float = 0.9) -> None:
        self.warm_start = check_int("warm_start", warm_start, 0)
        self.alpha = check_real("alpha", alpha, 0.0, 1.0, high_open=False)
        self.beta = check_real("beta", beta, 0.0, self.alpha, high_open=False)
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self._warning_detected = False
        self._n = 0
        self._last_error = 0
        self._n_errors = 0
        self._distance_mean = 0.0
        self._distance_square_sum = 0.0
        self._p2s_max = -1.0

    @property
    def warning_detected(self) -> bool:
        """Whether the last update left the detector in the warning zone."""
        return self._warning_detected

    @property
    def estimation(self) -> float:
        """Mean distance between consecutive errors since the start or the last detection."""
        return self._distance_mean

    def _update(self, x: float) -> None:
        if self._drift_detected:
            self._reset()
        self._n += 1
        if x != 1.0:
            return
        self._n_errors += 1
        distance = self._n - self._last_error
        self._last_error = self._n
        previous_mean = self._distance_mean
        self._distance_mean += (1.0 / self._n_errors) * (distance - previous_mean)
        self._distance_square_sum += (distance - previous_mean) * (distance - self._distance_mean)
        if self._n <= self.warm_start:
            return
        variance = self._distance_square_sum / (self._n_errors - 1) if self._n_errors > 1 else 0.0
        p2s = self._distance_mean + 2 * variance**0.5
        if p2s > self._p2s_max:
            self._p2s_max = p2s
        elif self._n_errors > self.warm_start:
            level = p2s / self._p2s_max
            if level < self.beta:
                self._drift_detected = True
            else:
                self._warning_detected = level < self.alpha

    def _get_state(self) -> dict[str, Any]:
        return {
            "warning_detected": self._warning_detected,
            "n": self._n,
            "last_error": self._last_error,
            "n_errors": self._n_errors,
            "distance_mean": self._distance_mean,
            "distance_square_sum": self._distance_square_sum,
            "p2s_max": self._p2s_max,
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._warning_detected = bool(state["warning_detected"])
        self._n = int(state["n"])
        self._last_error = int(state["last_error"])
        self._n_errors = int(state["n_errors"])
        self._distance_mean = float(state["distance_mean"])
        self._distance_square_sum = float(state["distance_square_sum"])
        self._p2s_max = float(state["p2s_max"])
