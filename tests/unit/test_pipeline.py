"""The per-model pipeline through `driftline replay`'s in-memory path, read from its metrics."""

from __future__ import annotations

from typing import Any

import pytest

from detectors import ProfileBuilder, WindowChecker
from driftline_scenarios import (
    CATEGORICAL,
    NEW_CATEGORY_FEATURE,
    NUMERIC,
    SHIFTED_NUMERIC,
    T0,
    drift_scenario,
    error_stream,
    join_scenario,
)
from driftline_testing import Samples, replay_samples, sample, series
from monitor.config import Settings


@pytest.fixture(scope="module")
def scenario() -> Any:
    return drift_scenario()


def test_stationary_phase_closes_windows_without_a_drift_decision(scenario: Any) -> None:
    got = replay_samples(scenario.reference + scenario.stationary)
    assert sample(got, "driftline_reference_learning", model="churn") == 0
    assert sample(got, "driftline_reference_rows", model="churn") == 5000
    assert sample(got, "driftline_windows_total", model="churn") == 10
    assert sample(got, "driftline_drifted_windows_total", model="churn") == 0
    decisions = series(got, "driftline_feature_drift", "feature", model="churn")
    assert set(decisions) == set(NUMERIC + CATEGORICAL)
    assert sum(decisions.values()) == 0


def test_shift_and_new_category_are_flagged_alone_with_the_detectors_figures(
    scenario: Any,
) -> None:
    got = replay_samples(scenario.predictions)
    decisions = series(got, "driftline_feature_drift", "feature", model="churn")
    assert {f for f, v in decisions.items() if v == 1} == {SHIFTED_NUMERIC, NEW_CATEGORY_FEATURE}
    # Every shifted window is drifted and none before it: 10 of 20 windows.
    assert sample(got, "driftline_windows_total", model="churn") == 20
    assert sample(got, "driftline_drifted_windows_total", model="churn") == 10
    per_feature = series(got, "driftline_feature_drift_windows_total", "feature", model="churn")
    assert per_feature == {f: 10.0 if f in decisions and decisions[f] else 0.0 for f in decisions}
    assert sample(got, "driftline_model_drift", model="churn") == 1
    outside = sample(got, "driftline_feature_outside_ratio", model="churn", feature="cat_0")
    assert outside is not None and 0.15 < outside < 0.25  # the new label's 20%

    # The same figures as the detectors on the same data: the learned reference is a
    # ProfileBuilder over the first 5,000 rows; the last window the last 1,000.
    builder = ProfileBuilder()
    for event in scenario.reference:
        builder.update(event["features"])
    window = scenario.drifted[-1000:]
    columns = {name: [e["features"][name] for e in window] for name in NUMERIC + CATEGORICAL}
    for name in NUMERIC:
        columns[name] = [float("nan") if v is None else float(v) for v in columns[name]]
    checks = WindowChecker(builder.build()).check(columns)
    for name, check in checks.items():
        assert sample(got, "driftline_feature_psi", model="churn", feature=name) == pytest.approx(
            check.psi, rel=1e-12
        )
        if name in NUMERIC:
            ks = sample(got, "driftline_feature_ks_statistic", model="churn", feature=name)
            assert ks == pytest.approx(check.statistic, rel=1e-12)
        else:
            p = sample(got, "driftline_feature_chi2_pvalue", model="churn", feature=name)
            assert p == pytest.approx(check.pvalue, rel=1e-9, abs=1e-300)


def test_join_counts_are_exact_and_accuracy_is_that_of_the_joined_pairs() -> None:
    s = join_scenario()
    settings = Settings.model_validate(
        {"join": {"ttl_s": 86_400}, "models": {"fraud": {"performance_window": 5000}}}
    )
    got = replay_samples([*s.predictions, *s.outcomes, s.clock], settings)
    joins = series(got, "driftline_joins_total", "result", model="fraud")
    assert joins == {
        "joined": s.joined,
        "expired": s.expired,
        "unmatched": s.unmatched,
        "unusable": 0,
    }
    events = series(got, "driftline_events_total", "status", model="fraud", stream="predictions")
    assert events == {"ok": 2000, "duplicate": s.duplicate_predictions}
    outcomes = series(got, "driftline_events_total", "status", model="fraud", stream="outcomes")
    assert outcomes == {"ok": s.joined + s.unmatched, "duplicate": s.duplicate_outcomes}
    accuracy = sample(got, "driftline_performance", model="fraud", metric="accuracy")
    assert accuracy == pytest.approx(s.accuracy, abs=1e-12)
    assert sample(got, "driftline_label_coverage_ratio", model="fraud") == pytest.approx(0.7)
    assert sample(got, "driftline_label_delay_seconds_count", model="fraud") == s.joined
    # Up to five hours late: nothing beyond the 12 h bucket, something beyond one hour.
    le_hour = sample(got, "driftline_label_delay_seconds_bucket", model="fraud", le="3600.0")
    le_12h = sample(got, "driftline_label_delay_seconds_bucket", model="fraud", le="43200.0")
    assert le_hour is not None and 0 < le_hour < s.joined
    assert le_12h == s.joined


def concept(error_after: float, seed: int) -> Samples:
    events = []
    for prediction, outcome in error_stream("risk", 3000, 17_000, 0.10, error_after, seed):
        events += [prediction, outcome]
    return replay_samples(events)


@pytest.mark.parametrize("seed", range(3))
def test_error_rate_rising_from_10_to_25_percent_is_a_concept_drift(seed: int) -> None:
    got = concept(0.25, seed)
    assert (sample(got, "driftline_concept_drifts_total", model="risk", detector="adwin") or 0) >= 1
    assert sample(got, "driftline_performance_drop", model="risk") == 1


@pytest.mark.parametrize("seed", range(3))
def test_stationary_error_rate_raises_nothing(seed: int) -> None:
    got = concept(0.10, seed)
    assert sample(got, "driftline_concept_drifts_total", model="risk", detector="adwin") == 0
    assert sample(got, "driftline_performance_drop", model="risk") == 0
    assert sample(got, "driftline_performance", model="risk", metric="error_rate") == (
        pytest.approx(0.10, abs=0.03)
    )


def conversions(rate_after: float, seed: int) -> Samples:
    import random

    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(40_000):
        rate = 0.05 if i < 20_000 else rate_after
        ts = T0 + i
        events.append(
            {
                "id": f"s-{i}",
                "model": "shop",
                "timestamp": ts,
                "features": {"x": 1.0},
                "prediction": 0.5,
            }
        )
        if rng.random() < rate:
            events.append(
                {"id": f"s-{i}", "model": "shop", "signal": "conversion", "timestamp": ts + 1}
            )
    return replay_samples(events)


@pytest.mark.parametrize("seed", range(2))
def test_conversion_halving_is_a_signal_drop(seed: int) -> None:
    got = conversions(0.025, seed)
    assert sample(got, "driftline_signal_drop", model="shop", signal="conversion") == 1
    baseline = sample(got, "driftline_signal_rate_baseline", model="shop", signal="conversion")
    assert baseline == pytest.approx(0.05, rel=0.15)


@pytest.mark.parametrize("seed", range(2))
def test_steady_conversion_is_not_a_signal_drop(seed: int) -> None:
    got = conversions(0.05, seed)
    assert sample(got, "driftline_signal_drop", model="shop", signal="conversion") == 0


def test_an_outcome_read_before_its_prediction_is_delayed_by_their_event_times() -> None:
    # The outcome (labelled 10 minutes after the prediction) is read first and waits;
    # the prediction joins it on arrival. The delay is the event times' difference.
    outcome = {"id": "p-1", "model": "fraud", "timestamp": T0 + 600.0, "label": 1}
    prediction = {"id": "p-1", "model": "fraud", "timestamp": T0, "prediction": 0.9}
    got = replay_samples([outcome, prediction])
    assert sample(got, "driftline_label_delay_seconds_count", model="fraud") == 1
    assert sample(got, "driftline_label_delay_seconds_sum", model="fraud") == 600.0
    assert sample(got, "driftline_label_delay_seconds_bucket", model="fraud", le="300.0") == 0
    assert sample(got, "driftline_label_delay_seconds_bucket", model="fraud", le="900.0") == 1
