"""Everything driftline tracks about one model, and the snapshot the metrics read.

Pure: events come in decoded, with their event time; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, OrderedDict
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import reduce
from itertools import compress
from operator import add
from typing import Any, Final

import numpy as np

from detectors.policy import DriftPolicy, FeatureEvidence
from monitor.config import LimitSettings, ModelConfig
from monitor.drift import DriftMonitor, WindowReport
from monitor.events import Prediction
from monitor.outcomes import OutcomeTracker
from monitor.performance import Task, errors_of, infer_task
from monitor.reference import ModelReference
from monitor.signals import SignalRates, SignalState
from monitor.telemetry import OTHER, LabelCap

__all__ = ["LABEL_DELAY_BUCKETS", "ModelMonitor", "ModelSnapshot", "Payload"]

#: Join payload: (model, prediction, version or "", segment values in config order).
Payload = tuple[str, Any, str, tuple[str, ...]]

_STATE_VERSION: Final = 1
#: Rows of predictions that wait, at most, for the drift windows (see ModelMonitor.flush).
FLUSH_ROWS: Final = 512
#: Joined pairs that wait, at most, for the outcome trackers (see ModelMonitor.flush).
FLUSH_PAIRS: Final = 512

LABEL_DELAY_BUCKETS: Final[tuple[float, ...]] = (
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    12 * 3600.0,
    86_400.0,
    3 * 86_400.0,
    7 * 86_400.0,
)


@dataclass(frozen=True)
class ModelSnapshot:
    """A consistent, immutable view of one model for one scrape."""

    name: str
    learning: bool
    reference_rows: int
    profile_id: str | None
    version: str | None
    report: WindowReport | None
    prediction_drifted: bool
    task: Task | None
    performance: Mapping[str, float]
    performance_dropped: bool
    version_performance: Mapping[str, Mapping[str, float]]
    segment_performance: Mapping[tuple[str, str], Mapping[str, float]]
    segment_reports: Mapping[tuple[str, str], WindowReport | None]
    concept_drifts: Mapping[str, int]
    label_delay_buckets: tuple[int, ...]
    label_delay_sum: float
    joins: Mapping[str, int]
    signals: Mapping[str, SignalState]
    untracked_values: int
    drifted_windows: int = 0
    reference_refreshes: int = 0
    last_concept_drift: float | None = None  # event time of the latest detected change
    performance_baseline: float | None = None  # accuracy (classification) or MAE
    last_joined_at: float | None = None  # event time of the latest joined outcome
    thresholds: Mapping[str, float] = field(default_factory=dict)  # the drift policy's
    feature_drift_windows: Mapping[str, int] = field(default_factory=dict)
    overflow: Mapping[str, int] = field(default_factory=dict)

    @property
    def label_coverage(self) -> float | None:
        """Joined over resolved predictions (joined or expired)."""
        resolved = self.joins.get("joined", 0) + self.joins.get("expired", 0)
        return None if resolved == 0 else self.joins.get("joined", 0) / resolved


class ModelMonitor:
    """Drift, data quality, performance, concept drift and signals of one model."""

    def __init__(
        self,
        name: str,
        config: ModelConfig,
        limits: LimitSettings,
        reference: ModelReference | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.limits = limits
        self.drift = self._drift_monitor(reference)
        self._prediction_policy = self._policy()
        self.prediction_drifted = False
        self._segment_values = {key: LabelCap(limits.max_segment_values) for key in config.segments}
        self._segment_drift: dict[tuple[str, str], DriftMonitor] = {}
        self.task: Task | None = config.task
        self._outcomes: OutcomeTracker | None = None
        self._segment_outcomes: dict[tuple[str, str], OutcomeTracker] = {}
        self._version_outcomes: OrderedDict[str, OutcomeTracker] = OrderedDict()
        self.version: str | None = None
        self._versions: OrderedDict[str, None] = OrderedDict()
        self.signals = SignalRates(
            config.window_size, config.reference_size, limits.max_signals, config.signal_baselines
        )
        self.joins: Counter[str] = Counter()
        self._delay_buckets = [0] * (len(LABEL_DELAY_BUCKETS) + 1)
        self._delay_sum = 0.0
        self.dirty = False  # state moved since the last snapshot
        self.last_joined_at: float | None = None
        # Rows taken but not yet added to the drift windows (see flush), and the
        # positions among them of each segment's rows.
        self._times: list[float] = []
        self._rows: list[Mapping[str, Any]] = []
        self._predictions: list[Any] = []
        self._segment_rows: dict[tuple[str, str], list[int]] = {}
        self._uncounted = 0  # predictions the signal rates have not counted yet
        # Joined pairs not yet applied (see flush): payload, label, delay, time, and
        # whether the payload's version was tracked when it joined.
        self._joined: list[tuple[Payload, Any, float, float, bool]] = []
        self.snapshot = self._snapshot()

    def _policy(self) -> DriftPolicy:
        return DriftPolicy(**self.config.policy.model_dump())

    def _drift_monitor(self, reference: ModelReference | None) -> DriftMonitor:
        return DriftMonitor(
            self.name,
            reference,
            reference_size=self.config.reference_size,
            window_size=self.config.window_size,
            window_seconds=self.config.window_seconds,
            max_features=self.limits.max_features,
            policy=self._policy,
            rolling=self.config.reference_mode == "rolling",
        )

    # -- predictions ------------------------------------------------------------------

    def on_prediction(self, timestamp: float, event: Prediction) -> Payload:
        """Take a prediction; returns what the join store keeps for it.

        Its row waits for :meth:`flush`, which adds the rows taken since the last one
        to the drift windows a column at a time.
        """
        self.dirty = True
        version = event.model_version
        if version is not None and version != self.version:
            self._new_version(version)
        prediction = event.prediction
        self._times.append(timestamp)
        self._rows.append(event.features)
        self._predictions.append(prediction)
        segments = self._segments(event.segment) if self._segment_values else ()
        # Counted by the signal rates before the next signal (or flush): no signal
        # comes between, so as one at a time.
        self._uncounted += 1
        if len(self._rows) >= FLUSH_ROWS:
            self._flush_rows()
        return (self.name, prediction, version or "", segments)

    def _new_version(self, version: str) -> None:
        self.version = version
        self._versions[version] = None
        self._versions.move_to_end(version)
        if len(self._versions) > self.limits.max_versions:
            self._flush_joined()  # waiting pairs go to the trackers about to go
        while len(self._versions) > self.limits.max_versions:
            old, _ = self._versions.popitem(last=False)
            self._version_outcomes.pop(old, None)

    def _segments(self, segment: Mapping[str, str]) -> tuple[str, ...]:
        """The row's value of each configured segment key ("" when it has none); the row
        (the last taken) waits for the drift windows of its segments."""
        row = len(self._rows) - 1
        segments = []
        for key, cap in self._segment_values.items():
            raw = segment.get(key)
            value = "" if raw is None else cap(raw)
            segments.append(value)
            if value:
                waiting = self._segment_rows.get((key, value))
                if waiting is None:
                    waiting = self._segment_rows[(key, value)] = []
                    if (key, value) not in self._segment_drift:
                        self._segment_drift[(key, value)] = self._drift_monitor(None)
                waiting.append(row)
        return tuple(segments)

    def _count_predictions(self) -> None:
        if self._uncounted:
            self.signals.predictions(self._uncounted)
            self._uncounted = 0

    def flush(self) -> None:
        """Apply the work that waits: the rows taken by :meth:`on_prediction` and the
        outcomes' concept-drift updates (:meth:`OutcomeTracker.flush`).

        Rows wait until ``FLUSH_ROWS`` of them are taken, or until a snapshot or a
        state is taken, which flush first: the drift windows then take them a column
        at a time, with the same results as one row at a time.
        """
        self._count_predictions()
        self._flush_rows()
        self._flush_joined()
        if self._outcomes is not None:
            self._outcomes.flush()

    def _flush_rows(self) -> None:
        if not self._rows:
            return
        # Everything that waits is taken at once: if a window check raised, no row
        # would be applied twice nor point into rows that are gone.
        times, rows, predictions = self._times, self._rows, self._predictions
        segment_rows = self._segment_rows
        self._times, self._rows, self._predictions = [], [], []
        self._segment_rows = {}
        for report in self.drift.add_many(times, rows, predictions):
            self._on_report(report)
        for key, indices in segment_rows.items():
            self._segment_drift[key].add_many(
                [times[i] for i in indices],
                [rows[i] for i in indices],
                [predictions[i] for i in indices],
            )

    def _on_report(self, report: WindowReport) -> None:
        check = report.prediction
        if check is not None and check.count > 0:
            pvalue = None if check.pvalue != check.pvalue else check.pvalue
            self._prediction_policy.update({"prediction": FeatureEvidence(pvalue, check.psi)})
            self.prediction_drifted = self._prediction_policy.drifted

    # -- outcomes and signals -----------------------------------------------------------

    def on_joined(self, payload: Payload, label: Any, delay_s: float, timestamp: float) -> None:
        """Take a joined pair; it waits for :meth:`flush` (at most ``FLUSH_PAIRS`` wait),
        which applies the pairs taken since the last one, tracker by tracker."""
        self.dirty = True
        version = payload[2]
        # Whether its version is tracked is decided now, as pair by pair.
        self._joined.append((payload, label, delay_s, timestamp, version in self._versions))
        if len(self._joined) >= FLUSH_PAIRS:
            self._flush_joined()

    def _flush_joined(self) -> None:
        pending = self._joined
        if not pending:
            return
        self._joined = []
        if self.task is None:  # the first pair that tells the task sets it
            for start, (payload, label, *_) in enumerate(pending):
                self.task = infer_task(payload[1], label)
                if self.task is not None:
                    pending = pending[start:]
                    break
                self.joins["unusable"] += 1
            else:
                return
        if self._outcomes is None:
            self._outcomes = self._tracker()
        predictions = [pair[0][1] for pair in pending]
        labels = [pair[1] for pair in pending]
        errors = errors_of(self.task, predictions, labels, self.config.threshold)
        # As OutcomeTracker.add decides (|1e308 - -1e308| overflows).
        checked = [e for e in errors if e is not None and math.isfinite(e)]
        if len(checked) < len(pending):
            self.joins["unusable"] += len(pending) - len(checked)
            usable = [e is not None and math.isfinite(e) for e in errors]
            pending = list(compress(pending, usable))
            if not pending:
                return
            predictions = list(compress(predictions, usable))
            labels = list(compress(labels, usable))
        delays = [max(pair[2], 0.0) for pair in pending]
        times = [pair[3] for pair in pending]
        self._outcomes.add_many(predictions, labels, checked, times)
        self.joins["joined"] += len(pending)
        latest = max(times)
        self.last_joined_at = max(self.last_joined_at or latest, latest)
        buckets = np.bincount(
            np.searchsorted(_DELAY_BOUNDS, delays, side="left"), minlength=len(_DELAY_BOUNDS) + 1
        )
        for bucket in np.flatnonzero(buckets).tolist():
            self._delay_buckets[bucket] += int(buckets[bucket])
        self._delay_sum = reduce(add, delays, self._delay_sum)
        # The version and segment trackers take their pairs in order (and are made in
        # the order of their first pair).
        columns = (predictions, labels, checked, times)
        self._feed(self._version_outcomes, _versions(pending), columns)
        keys = self.config.segments
        if keys:
            segments: dict[tuple[str, str], list[int] | None] = {}
            for i, pair in enumerate(pending):
                for key, value in zip(keys, pair[0][3], strict=False):
                    if value:
                        segments.setdefault((key, value), []).append(i)  # type: ignore[union-attr]
            self._feed(self._segment_outcomes, segments, columns)

    def _feed(
        self,
        trackers: MutableMapping[Any, OutcomeTracker],
        groups: Mapping[Any, list[int] | None],
        columns: tuple[list[Any], ...],
    ) -> None:
        """Each group's pairs (positions in ``columns``, ``None`` for all) to its
        tracker, made if new."""
        for group, rows in groups.items():
            tracker = trackers.get(group)
            if tracker is None:
                tracker = trackers[group] = self._tracker(detectors=())
            if rows is None:
                tracker.add_many(*columns)
            else:
                tracker.add_many(*([column[i] for i in rows] for column in columns))

    def _tracker(self, detectors: tuple[str, ...] | None = None) -> OutcomeTracker:
        assert self.task is not None
        return OutcomeTracker(
            self.task,
            self.config.performance_window,
            self.config.threshold,
            tuple(self.config.concept_detectors) if detectors is None else detectors,
        )

    def on_expired(self) -> None:
        self.joins["expired"] += 1
        self.dirty = True

    def on_unmatched(self) -> None:
        self.joins["unmatched"] += 1
        self.dirty = True

    def on_signal(self, name: str, value: float) -> None:
        self._count_predictions()
        self.signals.signal(name, value)
        self.dirty = True

    # -- checkpoints --------------------------------------------------------------------

    @property
    def settings_id(self) -> str:
        """Names the settings the state depends on: state is only restored under the same."""
        text = self.config.model_dump_json() + self.limits.model_dump_json()
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_state(self, refs: dict[str, ModelReference] | None = None) -> dict[str, Any]:
        """JSON-safe state of everything tracked; see :meth:`load_state` (and
        :meth:`DriftMonitor.to_state` for ``refs``)."""
        self.flush()

        def tracker(t: OutcomeTracker | None) -> dict[str, Any] | None:
            return None if t is None else t.to_state()

        return {
            "version": _STATE_VERSION,
            "settings_id": self.settings_id,
            "drift": self.drift.to_state(refs),
            "prediction_policy": self._prediction_policy.to_state(),
            "prediction_drifted": self.prediction_drifted,
            "segment_values": {k: cap.to_state() for k, cap in self._segment_values.items()},
            "segment_drift": [
                [k, v, m.to_state(refs)] for (k, v), m in self._segment_drift.items()
            ],
            "task": self.task,
            "outcomes": tracker(self._outcomes),
            "segment_outcomes": [
                [k, v, t.to_state()] for (k, v), t in self._segment_outcomes.items()
            ],
            "version_outcomes": [[v, t.to_state()] for v, t in self._version_outcomes.items()],
            "model_version": self.version,
            "versions": list(self._versions),
            "signals": self.signals.to_state(),
            "joins": dict(self.joins),
            "delay_buckets": list(self._delay_buckets),
            "delay_sum": self._delay_sum,
            "last_joined_at": self.last_joined_at,
        }

    def load_state(self, state: Mapping[str, Any], refs: Mapping[str, Any] | None = None) -> None:
        """Take over a state :meth:`to_state` wrote under the same settings.

        Raises ``ValueError`` if it was written under other settings or does not fit;
        the monitor must then be replaced by a fresh one.
        """
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"model state version must be {_STATE_VERSION}")
        if state.get("settings_id") != self.settings_id:
            raise ValueError("the model's settings changed since the checkpoint")
        self.drift.load_state(state["drift"], refs)
        self._prediction_policy = DriftPolicy.from_state(state["prediction_policy"])
        self.prediction_drifted = bool(state["prediction_drifted"])
        for key, cap in state["segment_values"].items():
            self._segment_values[key].load_state(cap)
        for key, value, drift in state["segment_drift"]:
            monitor = self._segment_drift[(key, value)] = self._drift_monitor(None)
            monitor.load_state(drift, refs)
        self.task = state["task"]

        def tracker(t: Mapping[str, Any], detectors: tuple[str, ...] | None) -> OutcomeTracker:
            restored = self._tracker(detectors)
            restored.load_state(t)
            return restored

        outcomes = state["outcomes"]
        self._outcomes = None if outcomes is None else tracker(outcomes, None)
        for key, value, t in state["segment_outcomes"]:
            self._segment_outcomes[(key, value)] = tracker(t, ())
        for version, t in state["version_outcomes"]:
            self._version_outcomes[version] = tracker(t, ())
        self.version = state["model_version"]
        self._versions = OrderedDict.fromkeys(state["versions"])
        self.signals.load_state(state["signals"])
        self.joins = Counter(state["joins"])
        self._delay_buckets = [int(n) for n in state["delay_buckets"]]
        self._delay_sum = float(state["delay_sum"])
        self.last_joined_at = state["last_joined_at"]
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the snapshot the metrics read (called by the loop, not per event)."""
        self.flush()
        self.snapshot = self._snapshot()
        self.dirty = False

    # -- the view the metrics read ------------------------------------------------------

    def _snapshot(self) -> ModelSnapshot:
        outcomes = self._outcomes
        reference = self.drift.reference
        return ModelSnapshot(
            name=self.name,
            learning=self.drift.learning,
            reference_rows=self.drift.reference_rows,
            profile_id=None if reference is None else reference.profile_id,
            version=self.version,
            report=self.drift.last_report,
            prediction_drifted=self.prediction_drifted,
            task=self.task,
            performance=outcomes.performance.metrics() if outcomes else {},
            performance_dropped=bool(outcomes and outcomes.dropped),
            version_performance={
                v: t.performance.metrics() for v, t in self._version_outcomes.items()
            },
            segment_performance={
                k: t.performance.metrics() for k, t in self._segment_outcomes.items()
            },
            segment_reports={k: m.last_report for k, m in self._segment_drift.items()},
            concept_drifts=dict(outcomes.concept_drifts) if outcomes else {},
            label_delay_buckets=tuple(self._delay_buckets),
            label_delay_sum=self._delay_sum,
            joins=dict(self.joins),
            signals=self.signals.states(),
            untracked_values=self.drift.untracked_values,
            drifted_windows=self.drift.drifted_windows,
            reference_refreshes=self.drift.refreshes,
            last_concept_drift=outcomes.last_concept_drift if outcomes else None,
            performance_baseline=outcomes.baseline if outcomes else None,
            last_joined_at=self.last_joined_at,
            thresholds={
                "alpha": self.config.policy.alpha,
                "min_effect": self.config.policy.min_effect,
            },
            feature_drift_windows=dict(self.drift.feature_drift_windows),
            overflow={
                "segment": sum(cap.overflowed for cap in self._segment_values.values()),
                "signal": self.signals.overflowed,
            },
        )


_DELAY_BOUNDS: Final = np.array(LABEL_DELAY_BUCKETS)


def _versions(
    pending: list[tuple[Payload, Any, float, float, bool]],
) -> dict[str, list[int] | None]:
    """The positions of each tracked version's pairs (``None``: all of them)."""
    tags = [pair[0][2] if pair[4] else "" for pair in pending]
    first = tags[0]
    if tags.count(first) == len(tags):  # the usual flush: one version
        return {first: None} if first else {}
    groups: dict[str, list[int] | None] = {}
    for i, tag in enumerate(tags):
        if tag:
            groups.setdefault(tag, []).append(i)  # type: ignore[union-attr]
    return groups


# Segment values beyond the cap are tracked together under this label.
SEGMENT_OTHER: Final = OTHER
