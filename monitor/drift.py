"""Data drift of one stream of predictions (a model, or one segment of it).

A :class:`DriftMonitor` first holds a reference — a profile file, or the profile of
its first ``reference_size`` rows — then fills windows of ``window_size`` rows (or
``window_seconds`` of event time) column by column, and when a window closes checks
every feature and the prediction against the reference and updates the decisions.
Pure: no I/O, no clock; times are event times passed in.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.feature_profile import NumericProfile
from detectors.policy import DriftPolicy, FeatureEvidence
from detectors.profile_builder import ABSENT, ProfileBuilder, to_category, to_columns
from detectors.window_check import FeatureCheck, WindowChecker
from monitor.reference import PREDICTION, ModelReference, reference_from_json

__all__ = ["DriftMonitor", "WindowReport"]

_STATE_VERSION = 1


@dataclass(frozen=True)
class WindowReport:
    """What one closed window found."""

    index: int  # windows closed so far, this one included
    rows: int
    started_at: float  # event time of the first and last rows
    ended_at: float
    checks: Mapping[str, FeatureCheck]
    prediction: FeatureCheck | None
    drifted_features: frozenset[str]
    drifted: bool
    adjusted_pvalues: Mapping[str, float]

    def to_state(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "rows": self.rows,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "checks": {name: _check_state(c) for name, c in self.checks.items()},
            "prediction": None if self.prediction is None else _check_state(self.prediction),
            "drifted_features": sorted(self.drifted_features),
            "drifted": self.drifted,
            "adjusted_pvalues": dict(self.adjusted_pvalues),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> WindowReport:
        prediction = state["prediction"]
        return cls(
            index=int(state["index"]),
            rows=int(state["rows"]),
            started_at=float(state["started_at"]),
            ended_at=float(state["ended_at"]),
            checks={name: FeatureCheck(*c) for name, c in state["checks"].items()},
            prediction=None if prediction is None else FeatureCheck(*prediction),
            drifted_features=frozenset(state["drifted_features"]),
            drifted=bool(state["drifted"]),
            adjusted_pvalues={k: float(v) for k, v in state["adjusted_pvalues"].items()},
        )


def _add_predictions(builder: ProfileBuilder, predictions: Sequence[Any]) -> None:
    """The predictions (``None`` is none) as rows of one feature, as one update each."""
    rows = [{PREDICTION: p} for p in predictions if p is not None]
    if not builder.update_many(rows):
        for row in rows:
            builder.update(row)


def _check_state(c: FeatureCheck) -> list[Any]:
    return [c.kind, c.count, c.missing_ratio, c.outside_ratio, c.psi, c.statistic, c.pvalue]


class DriftMonitor:
    """Reference, current window and decisions for one stream of rows.

    Parameters
    ----------
    model
        Name used in the reference learned from the stream.
    reference
        A reference to use from the start; ``None`` learns one from the first
        ``reference_size`` rows.
    window_size, window_seconds
        A window closes after ``window_size`` rows, or once it spans
        ``window_seconds`` of event time with at least ``min_window`` rows.
    max_features
        Features tracked at most; the reference's first ones (by name) are kept.
    policy
        Makes the decision policy (one per monitor).
    rolling
        ``False`` (pinned): the reference never changes. ``True``: once the rows since
        the reference reach ``reference_size`` and none of their windows was decided
        drifted, they become the reference. Rolling absorbs seasonal and slow change
        that never trips a window (so that slow drift goes unreported), but never
        learns a detected drift away: a drifted window restarts the collection.
    """

    def __init__(
        self,
        model: str,
        reference: ModelReference | None,
        *,
        reference_size: int = 5000,
        window_size: int = 1000,
        window_seconds: float | None = None,
        min_window: int = 100,
        max_features: int = 200,
        policy: Callable[[], DriftPolicy] = DriftPolicy,
        rolling: bool = False,
    ) -> None:
        self.model = model
        self.reference_size = reference_size
        self.window_size = window_size
        self.window_seconds = window_seconds
        self.min_window = min(min_window, window_size)
        self.max_features = max_features
        self._policy = policy()
        self._builder: ProfileBuilder | None = None
        self._predictions: ProfileBuilder | None = None
        self.reference: ModelReference | None = None
        self.untracked_values = 0  # feature values not in the reference, or beyond the cap
        self.last_report: WindowReport | None = None
        self._windows = 0
        self.rolling = rolling
        self.refreshes = 0  # references replaced by recent rows (rolling)
        self._next: tuple[ProfileBuilder, ProfileBuilder] | None = None
        self.drifted_windows = 0  # windows whose model-level decision was drifted
        self.feature_drift_windows: Counter[str] = Counter()  # windows decided drifted, per feature
        if reference is None:
            self._builder, self._predictions = ProfileBuilder(), ProfileBuilder()
        else:
            self._use(reference)

    @property
    def learning(self) -> bool:
        return self.reference is None

    @property
    def reference_rows(self) -> int:
        """Rows learned so far (while learning) or in the reference."""
        if self.reference is not None:
            return self.reference.features.n_rows
        return self._builder.n_rows if self._builder is not None else 0

    def _use(self, reference: ModelReference) -> None:
        self.reference = reference
        usable = [n for n, f in reference.features.features.items() if f.count > 0]
        tracked = usable[: self.max_features]
        self._checker = WindowChecker(reference.features, tracked)
        self._numeric = {
            n for n in tracked if isinstance(reference.features.features[n], NumericProfile)
        }
        pred = reference.prediction
        self._prediction_checker = (
            WindowChecker(pred)
            if pred is not None and pred.features[PREDICTION].count > 0
            else None
        )
        self._prediction_numeric = pred is not None and isinstance(
            pred.features.get(PREDICTION), NumericProfile
        )
        # Numeric columns are rows of one array, filled a stretch of rows at a time;
        # categorical ones are lists of labels.
        size = self.window_size
        # Numeric features first: a stretch's columns are read in this order, at once.
        self._numeric_names = tuple(n for n in tracked if n in self._numeric)
        self._names = [*self._numeric_names, *(n for n in tracked if n not in self._numeric)]
        self._block = np.full((len(self._numeric_names), size), np.nan)
        self._columns: dict[str, list[Any]] = {
            n: [None] * size for n in tracked if n not in self._numeric
        }
        self._prediction_column: list[Any] = [math.nan if self._prediction_numeric else None] * size
        self._rows = 0
        self._started_at = math.inf
        self._ended_at = -math.inf

    def add(
        self, timestamp: float, features: Mapping[str, Any], prediction: Any
    ) -> WindowReport | None:
        """Add one prediction's row; returns the report when this row closes a window."""
        reports = self.add_many((timestamp,), (features,), (prediction,))
        return reports[0] if reports else None

    def add_many(
        self,
        timestamps: Sequence[float],
        rows: Sequence[Mapping[str, Any]],
        predictions: Sequence[Any],
    ) -> list[WindowReport]:
        """Add rows in order, as one :meth:`add` per row would; returns the reports of
        the windows they closed.

        Rows go in stretches, column by column: up to the reference's size while it is
        learned, then up to each window's end.
        """
        reports: list[WindowReport] = []
        start, total = 0, len(rows)
        while start < total:
            if self._builder is not None:
                # Rows a builder turns down do not count: the reference is not complete
                # before this stretch's end.
                stop = min(total, start + max(self.reference_size - self._builder.n_rows, 1))
                self._learn_many(rows[start:stop], predictions[start:stop])
                start = stop
                continue
            stop = min(total, start + self.window_size - self._rows)
            if self.window_seconds is not None:
                stop = self._timed_stop(timestamps, start, stop)
            if self.rolling:
                self._collect_many(rows[start:stop], predictions[start:stop])
            self._fill(timestamps[start:stop], rows[start:stop], predictions[start:stop])
            start = stop
            if self._window_done():
                reports.append(self._close())
        return reports

    def _window_done(self) -> bool:
        if self._rows >= self.window_size:
            return True
        return (
            self.window_seconds is not None
            and self._rows >= self.min_window
            and self._ended_at - self._started_at >= self.window_seconds
        )

    def _timed_stop(self, timestamps: Sequence[float], start: int, stop: int) -> int:
        """End of the stretch ``start:stop`` whose last row closes the window on time."""
        assert self.window_seconds is not None
        low, high, rows = self._started_at, self._ended_at, self._rows
        for i in range(start, stop):
            low, high, rows = min(low, timestamps[i]), max(high, timestamps[i]), rows + 1
            if rows >= self.min_window and high - low >= self.window_seconds:
                return i + 1
        return stop

    def _fill(
        self,
        timestamps: Sequence[float],
        rows: Sequence[Mapping[str, Any]],
        predictions: Sequence[Any],
    ) -> None:
        """Write rows (that fit in the window) into its columns.

        Numeric values that are not ``float`` or ``int`` (``bool`` included) are missing
        (NaN, or ``None``, which becomes NaN when the window closes); categorical ones
        become labels (:func:`~detectors.profile_builder.to_category`).
        Each column is one list comprehension, or one slice copy when every value
        already has the right type.
        """
        if not rows:
            return
        start = self._rows
        stop = start + len(rows)
        values, present = to_columns(rows, self._names)
        split = len(self._numeric_names)
        if split:
            numeric = [
                column
                if set(map(type, column)) <= _NUMBERS_OR_NONE
                else [v if type(v) in _NUMBERS_OR_NONE else math.nan for v in column]
                for column in values[:split]
            ]
            # One conversion of them all (None becomes NaN).
            self._block[:, start:stop] = np.array(numeric, dtype=np.float64)
        for name, column in zip(self._names[split:], values[split:], strict=True):
            if not set(map(type, column)) <= _LABELS:
                column = [v if type(v) is str else _label(v) for v in column]
            self._columns[name][start:stop] = column
        self.untracked_values += sum(map(len, rows)) - present
        if self._prediction_numeric:
            if not set(map(type, predictions)) <= _NUMBERS:
                predictions = [p if _is_number(p) else math.nan for p in predictions]
        else:
            predictions = [to_category(p) for p in predictions]
        self._prediction_column[start:stop] = predictions
        self._rows = stop
        self._started_at = min(self._started_at, *timestamps)
        self._ended_at = max(self._ended_at, *timestamps)

    def _collect_many(self, rows: Sequence[Mapping[str, Any]], predictions: Sequence[Any]) -> None:
        if self._next is None:
            self._next = (ProfileBuilder(), ProfileBuilder())
        builder, prediction_builder = self._next
        if builder.update_many(rows):
            _add_predictions(prediction_builder, predictions)
            return
        for row, prediction in zip(rows, predictions, strict=True):
            self._collect(row, prediction)

    def _collect(self, features: Mapping[str, Any], prediction: Any) -> None:
        assert self._next is not None
        rows, predictions = self._next
        try:
            rows.update(features)
        except (TypeError, ValueError):
            return  # counted as untracked by the window
        if prediction is not None:
            predictions.update({PREDICTION: prediction})

    def _refresh(self, drifted: bool) -> None:
        """At a window's close: adopt or drop the rows collected since the reference."""
        if drifted:
            self._next = None
            return
        if self._next is None or self._next[0].n_rows < self.reference_size:
            return
        rows, predictions = self._next
        self._next = None
        self.refreshes += 1
        self._use(
            ModelReference(
                self.model, rows.build(), predictions.build() if predictions.n_rows else None
            )
        )

    def _learn_many(self, rows: Sequence[Mapping[str, Any]], predictions: Sequence[Any]) -> None:
        assert self._builder is not None and self._predictions is not None
        if self._builder.update_many(rows):
            _add_predictions(self._predictions, predictions)
        else:
            for row, prediction in zip(rows, predictions, strict=True):
                self._learn(row, prediction)
        self._learned()

    def _learn(self, features: Mapping[str, Any], prediction: Any) -> None:
        assert self._builder is not None and self._predictions is not None
        try:
            self._builder.update(features)
        except (TypeError, ValueError):
            self.untracked_values += len(features)
        if prediction is not None:
            self._predictions.update({PREDICTION: prediction})

    def _learned(self) -> None:
        """Once the reference's rows are in, it is built and the windows begin."""
        assert self._builder is not None and self._predictions is not None
        if self._builder.n_rows >= self.reference_size:
            prediction_profile = self._predictions.build() if self._predictions.n_rows else None
            self._use(ModelReference(self.model, self._builder.build(), prediction_profile))
            self._builder = self._predictions = None

    def _close(self) -> WindowReport:
        n = self._rows
        columns: dict[str, Any] = {name: column[:n] for name, column in self._columns.items()}
        columns.update(zip(self._numeric_names, self._block[:, :n], strict=True))
        checks = self._checker.check(columns)
        self._policy.update(
            {
                name: FeatureEvidence(None if math.isnan(c.pvalue) else c.pvalue, c.psi)
                for name, c in checks.items()
                if c.count > 0
            }
        )
        prediction = None
        if self._prediction_checker is not None:
            values: Any = self._prediction_column[:n]
            if self._prediction_numeric:
                values = np.array(values, dtype=np.float64)
            prediction = self._prediction_checker.check({PREDICTION: values})[PREDICTION]
        self._windows += 1
        report = WindowReport(
            index=self._windows,
            rows=n,
            started_at=self._started_at,
            ended_at=self._ended_at,
            checks=checks,
            prediction=prediction,
            drifted_features=self._policy.drifted_features,
            drifted=self._policy.drifted,
            adjusted_pvalues=self._policy.adjusted_pvalues,
        )
        self.last_report = report
        self.drifted_windows += report.drifted
        self.feature_drift_windows.update(report.drifted_features)
        self._reset_window()
        if self.rolling:
            self._refresh(report.drifted)
        return report

    def _reset_window(self) -> None:
        # The columns keep their old values: only their first ``_rows`` are ever read,
        # and the next window writes each of those before it counts it.
        self._rows = 0
        self._started_at, self._ended_at = math.inf, -math.inf

    @property
    def tracked_features(self) -> tuple[str, ...]:
        return self._checker.features if self.reference is not None else ()

    # -- checkpoints ---------------------------------------------------------------

    def to_state(self, refs: dict[str, ModelReference] | None = None) -> dict[str, Any]:
        """JSON-safe state (NaN as Python's ``json`` writes it); see :meth:`load_state`.

        With ``refs``, the reference is put there under its profile id and the state
        names it (it rarely changes: a checkpoint writes its text once, made once).
        """
        state: dict[str, Any] = {
            "version": _STATE_VERSION,
            "policy": self._policy.to_state(),
            "untracked_values": self.untracked_values,
            "windows": self._windows,
            "refreshes": self.refreshes,
            "drifted_windows": self.drifted_windows,
            "feature_drift_windows": dict(self.feature_drift_windows),
            "last_report": None if self.last_report is None else self.last_report.to_state(),
            "next": None if self._next is None else [b.to_state() for b in self._next],
        }
        if self.reference is None:
            assert self._builder is not None and self._predictions is not None
            state["learning"] = [self._builder.to_state(), self._predictions.to_state()]
            return state
        n = self._rows
        if refs is None:
            state["reference"] = self.reference.to_json("checkpoint")
        else:
            refs[self.reference.profile_id] = self.reference
            state["reference_id"] = self.reference.profile_id
        state["window"] = {
            "rows": n,
            "started_at": self._started_at if n else None,
            "ended_at": self._ended_at if n else None,
            "columns": {
                **dict(zip(self._numeric_names, self._block[:, :n].tolist(), strict=True)),
                **{name: c[:n] for name, c in self._columns.items()},
            },
            "prediction": self._prediction_column[:n],
        }
        return state

    def load_state(self, state: Mapping[str, Any], refs: Mapping[str, Any] | None = None) -> None:
        """Take over the state :meth:`to_state` wrote, on a monitor built with the same
        settings; ``ValueError`` (the monitor then unusable) if it does not fit. ``refs``
        holds the references (as JSON data) that the state names by profile id."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"drift state version must be {_STATE_VERSION}")
        self._policy = DriftPolicy.from_state(state["policy"])
        self.untracked_values = int(state["untracked_values"])
        self._windows = int(state["windows"])
        self.refreshes = int(state["refreshes"])
        self.drifted_windows = int(state["drifted_windows"])
        self.feature_drift_windows = Counter(state["feature_drift_windows"])
        report = state["last_report"]
        self.last_report = None if report is None else WindowReport.from_state(report)
        following = state["next"]
        self._next = (
            None
            if following is None
            else (ProfileBuilder.from_state(following[0]), ProfileBuilder.from_state(following[1]))
        )
        if "learning" in state:
            self.reference = None
            rows, predictions = state["learning"]
            self._builder = ProfileBuilder.from_state(rows)
            self._predictions = ProfileBuilder.from_state(predictions)
            return
        self._builder = self._predictions = None
        if "reference_id" in state:
            data = (refs or {}).get(state["reference_id"])
            if data is None:
                raise ValueError(f"reference {state['reference_id']!r} is missing")
        else:
            data = state["reference"]
        self._use(reference_from_json(data))
        window = state["window"]
        n = int(window["rows"])
        columns = window["columns"]
        if n >= self.window_size or set(columns) != set(self._columns) | set(self._numeric_names):
            raise ValueError("the window does not fit this monitor's settings")
        for row, name in enumerate(self._numeric_names):
            self._block[row, :n] = [math.nan if v is None else float(v) for v in columns[name]]
        for name in self._columns:
            self._columns[name][:n] = columns[name]
        self._prediction_column[:n] = window["prediction"]
        self._rows = n
        if n:
            self._started_at = float(window["started_at"])
            self._ended_at = float(window["ended_at"])


_NUMBERS = frozenset((float, int))
_NUMBERS_OR_NONE = frozenset((float, int, type(None)))
_LABELS = frozenset((str, type(None)))


def _label(value: Any) -> str | None:
    """A categorical window value: ``None`` when missing or absent, else its label."""
    return None if value is None or value is ABSENT else to_category(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
