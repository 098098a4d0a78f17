"""Alert lifecycle (pending, firing, resolved, hysteresis) and the conditions behind each name."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable
from typing import Any

import pytest

from driftline_scenarios import T0, drift_scenario, error_stream
from driftline_testing import parse_samples, sample
from monitor.alerts import ALERTS, AlertEngine, Condition
from monitor.config import Settings
from monitor.replay import ReplayResult, replay


def cond(alert: str = "FeatureDrift", model: str = "m", subject: str = "x") -> Condition:
    return Condition(alert, model, subject, {"psi": 0.3})


def test_an_alert_fires_after_its_minimum_duration_and_only_once() -> None:
    engine = AlertEngine({"FeatureDrift": 10.0}, resolve_after_s=30.0)
    assert engine.evaluate(0.0, [cond()]) == []
    assert engine.evaluate(9.9, [cond()]) == []
    fired = engine.evaluate(10.0, [cond()])
    assert [(t.status, t.alert.fired_at) for t in fired] == [("firing", 10.0)]
    assert engine.evaluate(11.0, [cond()]) == []  # deduplicated
    assert engine.active() == {("m", "FeatureDrift", "warning"): 1}


def test_a_pending_alert_that_clears_is_dropped_silently() -> None:
    engine = AlertEngine({"FeatureDrift": 10.0})
    engine.evaluate(0.0, [cond()])
    assert engine.evaluate(5.0, []) == []
    assert engine.instances() == []
    assert engine.evaluate(12.0, [cond()]) == []  # pending again, from 12 s


def test_a_firing_alert_resolves_only_after_staying_clear() -> None:
    engine = AlertEngine(resolve_after_s=30.0)
    assert [t.status for t in engine.evaluate(0.0, [cond()])] == ["firing"]
    assert engine.evaluate(10.0, []) == []
    assert engine.evaluate(35.0, [cond()]) == []  # back before 30 s: still the same firing
    assert engine.evaluate(40.0, []) == []
    assert engine.evaluate(69.0, []) == []
    resolved = engine.evaluate(70.0, [])
    assert [(t.status, t.at) for t in resolved] == [("resolved", 70.0)]
    assert engine.active() == {}


def test_instances_are_per_model_alert_and_subject_and_capped() -> None:
    engine = AlertEngine(max_instances=3)
    conditions = [cond(subject="a"), cond(subject="b"), cond(model="n"), cond(subject="c")]
    fired = engine.evaluate(0.0, conditions)
    assert len(fired) == 3 and engine.overflowed == 1
    assert engine.active() == {
        ("m", "FeatureDrift", "warning"): 1,
        ("n", "FeatureDrift", "warning"): 1,
    }


def test_transitions_are_json_with_the_documented_fields() -> None:
    engine = AlertEngine()
    c = Condition("FeatureDrift", "churn", "num_0", {"psi": float("nan"), "pvalue": 1e-9},
                  model_version="v3", profile_id="abc")  # fmt: skip
    (t,) = engine.evaluate(100.0, [c])
    record = json.loads(t.to_json())
    assert record["alert"] == "FeatureDrift" and record["status"] == "firing"
    assert record["model"] == "churn" and record["subject"] == "num_0"
    assert record["model_version"] == "v3" and record["profile_id"] == "abc"
    assert record["evidence"] == {"psi": None, "pvalue": 1e-9}
    assert record["severity"] == "warning" and record["runbook"].endswith("#featuredrift")
    assert t.key == b"churn/FeatureDrift/num_0"


def run(events: Iterable[dict[str, Any]], settings: Settings | None = None) -> ReplayResult:
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    return replay(io.BytesIO(data), settings or Settings(), start_time_s=T0)


def transitions(result: ReplayResult) -> list[tuple[str, str, str | None, str]]:
    return [
        (r["alert"], r["model"], r["subject"], r["status"]) for r in map(json.loads, result.alerts)
    ]


def test_feature_drift_fires_for_the_drifted_features_and_resolves_after_it_stops() -> None:
    s = drift_scenario(n_stationary=2000, n_drifted=3000)
    after = drift_scenario(seed=9, n_reference=0, n_stationary=6000, n_drifted=0,
                           t0=s.drifted[-1]["timestamp"] + 0.1).stationary  # fmt: skip
    for i, event in enumerate(after):
        event["id"] = f"after-{i}"
    settings = Settings.model_validate({"alerts": {"resolve_after_s": 60}})
    result = run(s.predictions + after, settings)
    got = transitions(result)
    firing = {(a, subject) for a, _, subject, status in got if status == "firing"}
    assert {("FeatureDrift", "num_0"), ("FeatureDrift", "cat_0")} <= firing
    assert not {f for a, f in firing if a == "FeatureDrift"} - {"num_0", "cat_0"}
    resolved = {(a, subject) for a, _, subject, status in got if status == "resolved"}
    assert {("FeatureDrift", "num_0"), ("FeatureDrift", "cat_0")} <= resolved
    # Every firing transition comes before its resolution, and only once each.
    assert len(got) == len(set(got))
    metrics = parse_samples(result.metrics.decode())
    labels = {"model": "churn", "alert": "FeatureDrift", "severity": "warning"}
    assert sample(metrics, "driftline_alert_active", **labels) == 0
    assert sample(metrics, "driftline_alert_transitions_total", alert="FeatureDrift",
                  status="resolved") == 2  # fmt: skip


def test_a_stationary_stream_raises_no_alert() -> None:
    s = drift_scenario(n_stationary=20_000, n_drifted=0)
    result = run(s.predictions)
    assert result.alerts == []
    metrics = parse_samples(result.metrics.decode())
    active = [v for (n, _), v in metrics.items() if n == "driftline_alert_active"]
    assert len(active) == len(ALERTS) and sum(active) == 0


def test_concept_drift_and_performance_drop_fire_with_their_evidence() -> None:
    events = []
    for prediction, outcome in error_stream("risk", 3000, 9000, 0.10, 0.25, seed=1):
        events += [prediction, outcome]
    records = [json.loads(r) for r in run(events).alerts]
    names = {r["alert"] for r in records if r["status"] == "firing"}
    assert {"ConceptDrift", "PerformanceDrop"} <= names
    drop = next(r for r in records if r["alert"] == "PerformanceDrop")
    assert drop["evidence"]["metric"] == "accuracy"
    assert drop["evidence"]["value"] < drop["evidence"]["baseline"]


def test_a_conversion_drop_fires_signal_drop_for_that_signal() -> None:
    rng = random.Random(2)
    events: list[dict[str, Any]] = []
    for i in range(30_000):
        events.append({"id": str(i), "model": "shop", "timestamp": T0 + i, "prediction": 0.5})
        if rng.random() < (0.05 if i < 15_000 else 0.02):
            events.append({"id": str(i), "model": "shop", "signal": "conversion",
                           "timestamp": T0 + i})  # fmt: skip
    firing = [t for t in transitions(run(events)) if t[3] == "firing"]
    assert firing == [("SignalDrop", "shop", "conversion", "firing")]


def test_no_traffic_and_label_delay_fire_for_the_silent_model_only() -> None:
    events: list[dict[str, Any]] = []
    for i in range(4000):
        ts = T0 + i
        events.append({"id": str(i), "model": "busy", "timestamp": ts, "prediction": 0.5})
        if i < 1000:
            events.append({"id": str(i), "model": "quiet", "timestamp": ts, "prediction": 0.9})
            events.append({"id": str(i), "model": "quiet", "timestamp": ts + 1, "label": 1})
    settings = Settings.model_validate({"alerts": {"no_traffic_s": 600, "label_delay_s": 1800}})
    firing = {t[:2] for t in transitions(run(events, settings)) if t[3] == "firing"}
    assert firing == {("NoTraffic", "quiet"), ("LabelDelay", "quiet")}


@pytest.mark.parametrize(("bad_share", "fires"), [(0.2, True), (0.01, False)])
def test_invalid_events_fire_above_their_ratio(bad_share: float, fires: bool) -> None:
    rng = random.Random(3)
    lines = []
    for i in range(5000):
        if rng.random() < bad_share:
            lines.append(
                b'{"model": "m", "id": "%d", "timestamp": %d}' % (i, T0 + i)
            )  # no prediction
        else:
            lines.append(json.dumps({"id": str(i), "model": "m", "timestamp": T0 + i,
                                     "prediction": 0.5}).encode())  # fmt: skip
    result = replay(io.BytesIO(b"\n".join(lines)), Settings(), start_time_s=T0)
    got = {t[:2] for t in transitions(result) if t[3] == "firing"}
    assert (("InvalidEvents", "m") in got) is fires
