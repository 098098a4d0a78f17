"""What a model's joined outcomes say: performance, its drop, and concept drift.

Pure: the :class:`OutcomeTracker` of one model (or one segment, or one version) takes
joined (prediction, label) pairs and keeps a sliding performance window, a
performance-drop decision against the first windows, and change detectors on the
per-example error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial, reduce
from operator import add
from typing import Any, Final

from detectors.change import ADWIN, CUSUM, DDM, EDDM, KSWIN, ChangeDetector, PageHinkley
from detectors.rate import RateTracker
from monitor.performance import PerformanceWindow, Task, error_of

__all__ = ["DETECTORS", "OutcomeTracker"]

#: Makers of the concept detectors by configured name. KSWIN samples at random: its
#: seed is fixed so that the same events give the same detections in every run.
DETECTORS: Final[dict[str, Callable[[], ChangeDetector]]] = {
    "adwin": ADWIN,
    "page_hinkley": PageHinkley,
    "ddm": DDM,
    "eddm": EDDM,
    "kswin": partial(KSWIN, seed=0),
    "cusum": CUSUM,
}
_BINARY_ONLY: Final = frozenset({"ddm", "eddm"})
#: Evaluation windows whose performance is the baseline of the drop decision.
BASELINE_WINDOWS: Final = 2
#: Relative worsening of the MAE that counts as a regression model's drop.
MAE_DROP: Final = 0.2
#: Errors that wait, at most, for the concept detectors (see OutcomeTracker.flush).
FLUSH_ERRORS: Final = 4096


class OutcomeTracker:
    """Performance and concept drift of one stream of joined pairs.

    Parameters
    ----------
    task
        The model's task.
    window
        Joined pairs per performance window (sliding for the gauges, tumbling for
        the drop decision).
    threshold
        Binary decision threshold on the score.
    detectors
        Names of the change detectors to run on the per-example error (``DETECTORS``);
        DDM and EDDM need 0/1 errors and are skipped for regression.

    Notes
    -----
    The drop decision: the first ``BASELINE_WINDOWS`` tumbling windows are the
    baseline. For classification the number of correct predictions per window is
    tested against the baseline accuracy by :class:`~detectors.rate.RateTracker`
    (exact conditional test, a drop of at least 5% relative, two windows in a row);
    for regression the window's MAE must exceed the baseline's by ``MAE_DROP``
    (relative) two windows in a row.
    """

    def __init__(
        self,
        task: Task,
        window: int = 1000,
        threshold: float = 0.5,
        detectors: tuple[str, ...] = ("adwin",),
    ) -> None:
        self.task: Task = task
        self.threshold = threshold
        self.window = window
        self.performance = PerformanceWindow(task, window, threshold)
        self.detectors: dict[str, ChangeDetector] = {
            name: DETECTORS[name]()
            for name in detectors
            if not (task == "regression" and name in _BINARY_ONLY)
        }
        # Every detector has a count from the start, so its series exists at 0.
        self.concept_drifts: Counter[str] = Counter(dict.fromkeys(self.detectors, 0))
        self.last_concept_drift: float | None = None  # event time of the latest
        self.pairs = 0
        self._accuracy = RateTracker(min_relative_drop=0.05, persistence=2, clear_after=2)
        self._baseline_windows = 0
        self._window_errors = 0.0
        self._window_pairs = 0
        self._baseline_mae: float | None = None
        self._mae_streak = 0
        self.dropped = False
        self._errors: list[float] = []  # waiting for the detectors (see flush)
        self._times: list[float] = []

    def add(self, prediction: object, label: object, timestamp: float) -> bool:
        """Add one joined pair; ``False`` if it does not fit the task.

        The concept detectors read its error at the next :meth:`flush`: once
        ``FLUSH_ERRORS`` wait, or when asked (before a snapshot or a state is taken).
        """
        error = error_of(self.task, prediction, label, self.threshold)
        if error is None or not math.isfinite(error):  # |1e308 - -1e308| overflows
            return False
        self.add_many([prediction], [label], [error], [timestamp])
        return True

    def add_many(
        self,
        predictions: Sequence[Any],
        labels: Sequence[Any],
        errors: Sequence[float],
        timestamps: Sequence[float],
    ) -> None:
        """Add pairs :meth:`add` would take, with their (finite) ``error_of``, in order:
        the same as one :meth:`add` per pair. (A model computes the errors once for its
        main, version and segment trackers.)"""
        self.performance.put_many(predictions, labels)
        n = len(errors)
        self.pairs += n
        if self.detectors:
            self._errors.extend(errors)
            self._times.extend(timestamps)
            if len(self._errors) >= FLUSH_ERRORS:
                self.flush()
        done = 0
        while done < n:
            take = min(n - done, self.window - self._window_pairs)
            # Summed one by one from the running total, as pair by pair.
            self._window_errors = reduce(add, errors[done : done + take], self._window_errors)
            self._window_pairs += take
            done += take
            if self._window_pairs >= self.window:
                self._close_window()

    def flush(self) -> None:
        """Feed the errors added since the last flush to the concept detectors, as
        one ``update_many`` per detector; the same detections as one update per pair."""
        if not self._errors:
            return
        errors, times = self._errors, self._times
        self._errors, self._times = [], []
        latest = -1
        for name, detector in self.detectors.items():
            found = detector.update_many(errors)
            if found.size:
                self.concept_drifts[name] += int(found.size)
                latest = max(latest, int(found[-1]))
        if latest >= 0:
            self.last_concept_drift = times[latest]

    def _close_window(self) -> None:
        n, errors = self._window_pairs, self._window_errors
        self._window_pairs, self._window_errors = 0, 0.0
        learning = self._baseline_windows < BASELINE_WINDOWS
        self._baseline_windows += learning
        if self.task == "regression":
            mae = errors / n
            if learning:
                previous = self._baseline_mae or 0.0
                self._baseline_mae = previous + (mae - previous) / self._baseline_windows
                return
            assert self._baseline_mae is not None
            worse = mae > (1 + MAE_DROP) * self._baseline_mae
            self._mae_streak = (
                max(self._mae_streak, 0) + 1 if worse else min(self._mae_streak, 0) - 1
            )
            if self._mae_streak >= 2:
                self.dropped = True
            elif self._mae_streak <= -2:
                self.dropped = False
            return
        correct = n - errors
        if learning:
            self._accuracy.learn(correct, n)
        else:
            self._accuracy.update(correct, n)
            self.dropped = self._accuracy.drift_detected

    def to_state(self) -> dict[str, Any]:
        """JSON-safe state; :meth:`load_state` on a tracker built alike takes it over."""
        self.flush()
        return {
            "performance": self.performance.to_state(),
            "detectors": {name: d.to_state() for name, d in self.detectors.items()},
            "concept_drifts": dict(self.concept_drifts),
            "last_concept_drift": self.last_concept_drift,
            "pairs": self.pairs,
            "accuracy": self._accuracy.to_state(),
            "baseline_windows": self._baseline_windows,
            "window_errors": self._window_errors,
            "window_pairs": self._window_pairs,
            "baseline_mae": self._baseline_mae,
            "mae_streak": self._mae_streak,
            "dropped": self.dropped,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._errors, self._times = [], []
        if set(state["detectors"]) != set(self.detectors):
            raise ValueError("the concept detectors differ from the configured ones")
        self.performance = PerformanceWindow.from_state(state["performance"])
        self.detectors = {
            name: ChangeDetector.from_state(d) for name, d in state["detectors"].items()
        }
        self.concept_drifts = Counter(state["concept_drifts"])
        self.last_concept_drift = state["last_concept_drift"]
        self.pairs = int(state["pairs"])
        self._accuracy = RateTracker.from_state(state["accuracy"])
        self._baseline_windows = int(state["baseline_windows"])
        self._window_errors = float(state["window_errors"])
        self._window_pairs = int(state["window_pairs"])
        self._baseline_mae = state["baseline_mae"]
        self._mae_streak = int(state["mae_streak"])
        self.dropped = bool(state["dropped"])

    @property
    def baseline(self) -> float | None:
        """Baseline accuracy (classification) or MAE (regression), once learned."""
        if self._baseline_windows < BASELINE_WINDOWS:
            return None
        return self._baseline_mae if self.task == "regression" else self._accuracy.baseline
