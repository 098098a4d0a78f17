"""Alerts: conditions read from the model snapshots, a lifecycle with hysteresis, transitions out.

Pure: the loop passes the time. Each alert instance is keyed by (model, alert, subject),
subject being the feature or signal name where there is one. Its lifecycle:

    inactive --condition--> pending --held for_s--> firing --cleared resolve_after_s--> resolved

A pending alert whose condition clears before ``for_s`` is dropped without a word; a
firing one whose condition comes back before ``resolve_after_s`` stays firing. Every
firing and resolved transition is returned for publication on the alerts topic.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal, get_args

from monitor.config import AlertName, AlertSettings
from monitor.model import ModelSnapshot

__all__ = [
    "ALERTS",
    "SEVERITY",
    "AlertEngine",
    "AlertInstance",
    "Condition",
    "Conditions",
    "Transition",
]

ALERTS: Final[tuple[str, ...]] = get_args(AlertName)
SEVERITY: Final[Mapping[str, str]] = {
    "FeatureDrift": "warning",
    "PredictionDrift": "warning",
    "ConceptDrift": "warning",
    "PerformanceDrop": "critical",
    "SignalDrop": "critical",
    "LabelDelay": "warning",
    "InvalidEvents": "warning",
    "NoTraffic": "critical",
    "ConsumerLag": "warning",
}
#: Seconds a condition must hold before firing, unless ``alerts.for_s`` says otherwise.
DEFAULT_FOR_S: Final[Mapping[str, float]] = {"InvalidEvents": 60.0, "ConsumerLag": 300.0}
RUNBOOK: Final = "docs/runbook.md#"
SCHEMA_VERSION: Final = 1


@dataclass(frozen=True)
class Condition:
    """An alert's condition holding now, with what shows it."""

    alert: str
    model: str
    subject: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    model_version: str | None = None
    profile_id: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.alert, self.subject)


@dataclass(frozen=True)
class AlertInstance:
    condition: Condition
    status: Literal["pending", "firing"]
    since: float  # the condition first held
    fired_at: float | None = None
    cleared_at: float | None = None  # while firing: when the condition stopped holding

    @property
    def severity(self) -> str:
        return SEVERITY[self.condition.alert]


@dataclass(frozen=True)
class Transition:
    status: Literal["firing", "resolved"]
    alert: AlertInstance
    at: float

    def to_json(self) -> bytes:
        """The alerts-topic record (schema in the README)."""
        c = self.alert.condition
        return json.dumps(
            {
                "schema": SCHEMA_VERSION,
                "alert": c.alert,
                "status": self.status,
                "severity": self.alert.severity,
                "model": c.model or None,
                "subject": c.subject or None,
                "model_version": c.model_version,
                "profile_id": c.profile_id,
                "at": self.at,
                "since": self.alert.since,
                "fired_at": self.alert.fired_at,
                "evidence": _finite(dict(c.evidence)),
                "runbook": RUNBOOK + c.alert.lower(),
                "summary": summary(c),
            },
            sort_keys=True,
            allow_nan=False,
        ).encode()

    @property
    def key(self) -> bytes:
        c = self.alert.condition
        return f"{c.model}/{c.alert}/{c.subject}".encode()


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def summary(c: Condition) -> str:
    e = c.evidence
    what = {
        "FeatureDrift": f"feature {c.subject} of {c.model} drifted (PSI {e.get('psi')})",
        "PredictionDrift": f"predictions of {c.model} drifted (PSI {e.get('psi')})",
        "ConceptDrift": f"the error of {c.model} changed ({e.get('detector')})",
        "PerformanceDrop": f"performance of {c.model} dropped ({e.get('metric')} "
        f"{e.get('value')} against {e.get('baseline')})",
        "SignalDrop": f"signal {c.subject} of {c.model} fell to {e.get('rate')} per "
        f"prediction against {e.get('baseline')}",
        "LabelDelay": f"no outcome of {c.model} joined for {e.get('seconds')} s",
        "InvalidEvents": f"{e.get('ratio')} of the events of {c.model} are invalid",
        "NoTraffic": f"no prediction of {c.model} for {e.get('seconds')} s",
        "ConsumerLag": f"driftline is {e.get('lag')} records behind",
    }
    return what.get(c.alert, c.alert)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or value != value else round(value, digits)


class AlertEngine:
    """The lifecycle of every alert instance.

    Parameters
    ----------
    for_s
        Seconds a condition must hold before the alert fires, per alert name (0 for
        names not given).
    resolve_after_s
        Seconds a firing alert's condition must stay clear before it resolves.
    max_instances
        Alert instances tracked at most; conditions beyond are counted in ``overflowed``.
    """

    def __init__(
        self,
        for_s: Mapping[Any, float] | None = None,
        resolve_after_s: float = 300.0,
        max_instances: int = 1000,
    ) -> None:
        self.for_s = {**DEFAULT_FOR_S, **(for_s or {})}
        self.resolve_after_s = resolve_after_s
        self.max_instances = max_instances
        self._instances: dict[tuple[str, str, str], AlertInstance] = {}
        self.overflowed = 0

    def evaluate(self, now: float, conditions: Iterable[Condition]) -> list[Transition]:
        """Advance every instance to ``now`` given the conditions holding; the transitions."""
        transitions: list[Transition] = []
        holding: set[tuple[str, str, str]] = set()
        for condition in conditions:
            key = condition.key
            holding.add(key)
            current = self._instances.get(key)
            if current is None:
                if len(self._instances) >= self.max_instances:
                    self.overflowed += 1
                    continue
                current = AlertInstance(condition, "pending", since=now)
            else:
                current = replace(current, condition=condition, cleared_at=None)
            if current.status == "pending" and now - current.since >= self.for_s.get(
                condition.alert, 0.0
            ):
                current = replace(current, status="firing", fired_at=now)
                transitions.append(Transition("firing", current, now))
            self._instances[key] = current
        for key, instance in list(self._instances.items()):
            if key in holding:
                continue
            if instance.status == "pending":
                del self._instances[key]
                continue
            cleared_at = instance.cleared_at if instance.cleared_at is not None else now
            if now - cleared_at >= self.resolve_after_s:
                del self._instances[key]
                transitions.append(Transition("resolved", instance, now))
            else:
                self._instances[key] = replace(instance, cleared_at=cleared_at)
        return transitions

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> AlertEngine:
        return cls(dict(settings.for_s), settings.resolve_after_s, settings.max_instances)

    def instances(self) -> list[AlertInstance]:
        return list(self._instances.values())

    def to_state(self, models: Collection[str] | None = None) -> dict[str, Any]:
        """Pending and firing instances (of ``models``, or all), so that a restart
        neither re-fires nor forgets."""
        return {
            "instances": [
                {
                    "condition": asdict(i.condition),
                    "status": i.status,
                    "since": i.since,
                    "fired_at": i.fired_at,
                    "cleared_at": i.cleared_at,
                }
                for i in self._instances.values()
                if models is None or i.condition.model in models
            ],
            "overflowed": self.overflowed if models is None else 0,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace every instance with those of ``state``."""
        instances = _instances(state)
        self._instances = instances
        self.overflowed = int(state["overflowed"])

    def add_state(self, state: Mapping[str, Any]) -> None:
        """Take over instances (of models that moved here); those held stay."""
        for key, instance in _instances(state).items():
            self._instances.setdefault(key, instance)

    def drop(self, models: Collection[str]) -> None:
        """Forget the instances of ``models`` (they moved elsewhere; no transition)."""
        for key in [k for k, i in self._instances.items() if i.condition.model in models]:
            del self._instances[key]

    def active(self) -> dict[tuple[str, str, str], int]:
        """``{(model, alert, severity): 1}`` for firing instances (any subject)."""
        return {
            (i.condition.model, i.condition.alert, i.severity): 1
            for i in self._instances.values()
            if i.status == "firing"
        }


def _instances(state: Mapping[str, Any]) -> dict[tuple[str, str, str], AlertInstance]:
    instances = {}
    for i in state["instances"]:
        status = i["status"]
        if status not in ("pending", "firing") or i["condition"]["alert"] not in SEVERITY:
            raise ValueError(f"not an alert instance: {i!r:.200}")
        instance = AlertInstance(
            Condition(**i["condition"]), status, i["since"], i["fired_at"], i["cleared_at"]
        )
        instances[instance.condition.key] = instance
    return instances


@dataclass
class Conditions:
    """Reads the alert conditions off model snapshots and the daemon's own counters.

    Parameters
    ----------
    no_traffic_s
        A monitored model with no new prediction for this long (loop time) has NoTraffic.
    label_delay_s
        A model whose outcomes joined before, with none joined for this long of event
        time while its predictions go on, has LabelDelay.
    concept_hold_s
        ConceptDrift holds for this long of event time after each detected change.
    invalid_ratio, invalid_min, invalid_window_s
        InvalidEvents: over the last ``invalid_window_s``, at least ``invalid_min``
        invalid events making more than ``invalid_ratio`` of the model's events.
    max_lag
        ConsumerLag: records behind over all partitions.
    """

    no_traffic_s: float = 600.0
    label_delay_s: float = 86_400.0
    concept_hold_s: float = 3600.0
    invalid_ratio: float = 0.05
    invalid_min: int = 10
    invalid_window_s: float = 300.0
    max_lag: int = 100_000
    _traffic: dict[str, tuple[int, float]] = field(default_factory=dict, repr=False)
    _quality: dict[str, deque[tuple[float, int, int]]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, s: AlertSettings) -> Conditions:
        return cls(
            no_traffic_s=s.no_traffic_s,
            label_delay_s=s.label_delay_s,
            concept_hold_s=s.concept_hold_s,
            invalid_ratio=s.invalid_ratio,
            invalid_min=s.invalid_min,
            invalid_window_s=s.invalid_window_s,
            max_lag=s.max_lag,
        )

    def __call__(
        self,
        now: float,
        watermark: float,
        models: Iterable[ModelSnapshot],
        events: Mapping[tuple[str, str, str], int],
        lag: int,
    ) -> Iterator[Condition]:
        totals: dict[str, list[int]] = {}
        for (stream, model, status), n in events.items():
            counts = totals.setdefault(model, [0, 0, 0])  # predictions, valid, invalid
            if status == "invalid":
                counts[2] += n
            else:
                counts[1] += n
                counts[0] += n if stream == "predictions" else 0
        for m in models:
            yield from self._model(now, watermark, m, totals.get(m.name, [0, 0, 0]))
        for model, counts in sorted(totals.items()):
            # Also for __unknown__ and __other__: invalid events of no monitored model.
            yield from self._invalid(now, model, counts)
        if lag > self.max_lag:
            yield Condition("ConsumerLag", "", evidence={"lag": lag, "threshold": self.max_lag})

    def _model(
        self, now: float, watermark: float, m: ModelSnapshot, counts: list[int]
    ) -> Iterator[Condition]:
        base = {"model_version": m.version, "profile_id": m.profile_id}
        report = m.report
        if report is not None:
            window = {
                "index": report.index,
                "rows": report.rows,
                "started_at": report.started_at,
                "ended_at": report.ended_at,
            }
            for feature in sorted(report.drifted_features):
                check = report.checks[feature]
                evidence = {
                    "psi": _round(check.psi),
                    "test": "ks" if check.kind == "numeric" else "chi2",
                    "statistic": _round(check.statistic),
                    "pvalue": check.pvalue,
                    "adjusted_pvalue": report.adjusted_pvalues.get(feature),
                    **m.thresholds,
                    "missing_ratio": _round(check.missing_ratio),
                    "outside_ratio": _round(check.outside_ratio),
                    "window": window,
                }
                yield Condition("FeatureDrift", m.name, feature, evidence, **base)
            if m.prediction_drifted and report.prediction is not None:
                evidence = {
                    "psi": _round(report.prediction.psi),
                    "pvalue": report.prediction.pvalue,
                    **m.thresholds,
                    "window": window,
                }
                yield Condition("PredictionDrift", m.name, "", evidence, **base)
        if m.last_concept_drift is not None and watermark - m.last_concept_drift < (
            self.concept_hold_s
        ):
            evidence = {
                "detector": ",".join(sorted(k for k, v in m.concept_drifts.items() if v)),
                "detected_at": m.last_concept_drift,
                "changes": sum(m.concept_drifts.values()),
            }
            yield Condition("ConceptDrift", m.name, "", evidence, **base)
        if m.performance_dropped:
            metric = "mae" if m.task == "regression" else "accuracy"
            evidence = {
                "metric": metric,
                "value": _round(m.performance.get(metric)),
                "baseline": _round(m.performance_baseline),
            }
            yield Condition("PerformanceDrop", m.name, "", evidence, **base)
        for name, signal in sorted(m.signals.items()):
            if signal.dropped:
                evidence = {"rate": _round(signal.rate), "baseline": _round(signal.baseline)}
                yield Condition("SignalDrop", m.name, name, evidence, **base)
        if m.last_joined_at is not None and watermark - m.last_joined_at > self.label_delay_s:
            evidence = {
                "seconds": round(watermark - m.last_joined_at),
                "threshold": self.label_delay_s,
                "coverage": _round(m.label_coverage),
            }
            yield Condition("LabelDelay", m.name, "", evidence, **base)
        # NoTraffic: the model's prediction count has not moved for no_traffic_s.
        predictions = counts[0]
        seen, since = self._traffic.get(m.name, (-1, now))
        if predictions != seen:
            self._traffic[m.name] = (predictions, now)
        elif predictions > 0 and now - since >= self.no_traffic_s:
            evidence = {"seconds": round(now - since), "threshold": self.no_traffic_s}
            yield Condition("NoTraffic", m.name, "", evidence, **base)

    def _invalid(self, now: float, model: str, counts: list[int]) -> Iterator[Condition]:
        """InvalidEvents over a sliding window of (time, valid, invalid) totals."""
        history = self._quality.setdefault(model, deque())
        history.append((now, counts[1], counts[2]))
        while len(history) > 1 and now - history[1][0] >= self.invalid_window_s:
            history.popleft()
        _, valid0, invalid0 = history[0]
        invalid = counts[2] - invalid0
        total = invalid + counts[1] - valid0
        if invalid >= self.invalid_min and invalid > self.invalid_ratio * total:
            evidence = {
                "ratio": round(invalid / total, 4),
                "invalid": invalid,
                "events": total,
                "threshold": self.invalid_ratio,
                "window_s": self.invalid_window_s,
            }
            yield Condition("InvalidEvents", model, "", evidence)
