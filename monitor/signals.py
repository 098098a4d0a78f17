"""Business signals of one model: the rate per prediction of each signal, against a baseline.

Windows are counted in predictions: every ``window`` predictions, each signal's
count in that span is tested by its :class:`~detectors.rate.RateTracker`. During the
model's reference period the counts teach the baseline instead (unless one is
configured).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detectors.rate import RateTracker
from monitor.telemetry import OTHER, LabelCap

__all__ = ["SignalRates", "SignalState"]


@dataclass(frozen=True)
class SignalState:
    rate: float | None  # the last closed window's signals per prediction
    baseline: float | None
    dropped: bool
    total: float  # sum of values seen


class SignalRates:
    """Rate trackers of one model's signals, by name (capped: the rest are ``__other__``)."""

    def __init__(
        self,
        window: int,
        reference_predictions: int,
        max_signals: int,
        baselines: Mapping[str, float] | None = None,
    ) -> None:
        self.window = window
        self.reference_predictions = reference_predictions
        self._baselines = dict(baselines or {})
        self._names = LabelCap(max_signals, preset=self._baselines)
        self._trackers: dict[str, RateTracker] = {}
        self._counts: dict[str, float] = {}
        self._totals: dict[str, float] = {}
        self._predictions = 0  # in the current window
        self._seen = 0  # predictions ever

    @property
    def overflowed(self) -> int:
        return self._names.overflowed

    def signal(self, name: str, value: float) -> str:
        """Count a signal; returns the label it is tracked under."""
        label = self._names(name)
        if label not in self._trackers:
            baseline = self._baselines.get(label) if label != OTHER else None
            self._trackers[label] = RateTracker(baseline_rate=baseline)
            self._counts[label] = 0.0
            self._totals[label] = 0.0
        self._counts[label] += value
        self._totals[label] += value
        return label

    def prediction(self) -> None:
        """Count a prediction (the exposure); closes the window when it is full."""
        self.predictions(1)

    def predictions(self, n: int) -> None:
        """Count ``n`` predictions with no signal between them, as ``n`` calls of
        :meth:`prediction` would (closing every window they fill)."""
        while n > 0:
            take = max(1, min(n, self.window - self._predictions))
            self._predictions += take
            self._seen += take
            n -= take
            if self._predictions >= self.window:
                self._close()

    def _close(self) -> None:
        learning = self._seen <= self.reference_predictions
        for label, tracker in self._trackers.items():
            count = max(self._counts[label], 0.0)
            if learning and tracker.baseline_rate is None:
                tracker.learn(count, self._predictions)
            elif not learning:
                tracker.update(count, self._predictions)
            self._counts[label] = 0.0
        self._predictions = 0

    def to_state(self) -> dict[str, Any]:
        return {
            "names": self._names.to_state(),
            "trackers": {label: t.to_state() for label, t in self._trackers.items()},
            "counts": dict(self._counts),
            "totals": dict(self._totals),
            "predictions": self._predictions,
            "seen": self._seen,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._names.load_state(state["names"])
        self._trackers = {
            label: RateTracker.from_state(t) for label, t in state["trackers"].items()
        }
        self._counts = {k: float(v) for k, v in state["counts"].items()}
        self._totals = {k: float(v) for k, v in state["totals"].items()}
        self._predictions = int(state["predictions"])
        self._seen = int(state["seen"])

    def states(self) -> dict[str, SignalState]:
        return {
            label: SignalState(t.rate, t.baseline, t.drift_detected, self._totals[label])
            for label, t in self._trackers.items()
        }
