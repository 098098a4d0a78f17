"""The simulator's scenarios, replayed through the pipeline: each raises what it should."""

from __future__ import annotations

import io
import json
import threading

import pytest

from monitor.config import Settings
from monitor.replay import replay
from monitor.simulate import SCENARIOS, Traffic, parse_scenarios, run

T0 = 1_700_000_000.0
STEP = 0.02  # simulated seconds between ticks


def firing(scenario: str, ticks: int = 16_000, **alerts: float) -> set[tuple[str, str, str]]:
    """(alert, model, subject) of every alert that fired replaying ``ticks`` ticks."""
    traffic = Traffic(frozenset({scenario}), change_after_s=150.0, label_delay_s=2.0, seed=1,
                      start=T0)  # fmt: skip
    lines = [value for i in range(ticks) for _, _, value in traffic.tick(T0 + i * STEP)]
    settings = Settings.model_validate({"alerts": {"resolve_after_s": 3600, **alerts}})
    result = replay(io.BytesIO(b"\n".join(lines)), settings, start_time_s=T0)
    records = [json.loads(r) for r in result.alerts]
    return {
        (r["alert"], r["model"], r["subject"] or "") for r in records if r["status"] == "firing"
    }


def test_the_stable_scenario_raises_nothing() -> None:
    assert firing("stable") == set()


def test_feature_drift_is_caught_on_the_drifted_feature() -> None:
    got = firing("feature-drift")
    assert ("FeatureDrift", "churn", "monthly_spend") in got
    assert {s for a, m, s in got if a == "FeatureDrift"} == {"monthly_spend"}
    assert not {a for a, m, _ in got if m == "eta"}


def test_a_new_category_is_caught_on_its_feature() -> None:
    got = firing("new-category")
    assert {(a, s) for a, m, s in got if a == "FeatureDrift"} == {("FeatureDrift", "app_version")}


def test_concept_drift_raises_concept_drift_and_a_performance_drop() -> None:
    got = firing("concept-drift")
    assert {("ConceptDrift", "churn", ""), ("PerformanceDrop", "churn", "")} <= got
    assert not {a for a, _, _ in got if a == "FeatureDrift"}


def test_a_conversion_drop_raises_signal_drop() -> None:
    got = firing("conversion-drop", ticks=30_000)
    assert ("SignalDrop", "churn", "conversion") in got


def test_a_label_outage_raises_label_delay_for_both_models() -> None:
    got = firing("label-outage", label_delay_s=60)
    assert {("LabelDelay", "churn", ""), ("LabelDelay", "eta", "")} <= got


def test_bad_events_raise_invalid_events() -> None:
    got = firing("bad-events", ticks=30_000)  # the 300 s window must fill with bad traffic
    assert ("InvalidEvents", "churn", "") in got


def test_traffic_is_reproducible_and_scenarios_are_checked() -> None:
    def sample(seed: int) -> list[bytes]:
        traffic = Traffic(frozenset({"stable"}), seed=seed, start=T0)
        return [v for i in range(50) for _, _, v in traffic.tick(T0 + i)]

    assert sample(3) == sample(3) != sample(4)
    assert parse_scenarios("feature-drift, bad-events") == {"feature-drift", "bad-events"}
    with pytest.raises(ValueError, match="unknown scenario 'drift'"):
        parse_scenarios("drift")
    with pytest.raises(ValueError, match="unknown scenario"):
        Traffic(frozenset({"nope"}))
    assert len(SCENARIOS) == 7


def test_run_paces_the_traffic_and_stops_when_told() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    stop = threading.Event()
    progress = run(Traffic(), lambda s, k, v: sent.append((s, k, v)), 2000.0, 0.5, stop)
    assert progress.records == len(sent) > 0
    assert {s for s, _, _ in sent} <= {"predictions", "outcomes", "signals"}
    assert 0 < progress.predictions <= 2 * 2000 * 0.5 + 2
