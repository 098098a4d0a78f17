"""Segments, versions and caps: what the analyst can slice by, and what stays bounded."""

from __future__ import annotations

import random
from typing import Any

import pytest

from driftline_testing import replay_samples, sample, series
from monitor.config import Settings
from monitor.telemetry import safe_label

T0 = 1_700_000_000.0


def pair(model: str, i: int, score: float, label: int, **extra: Any) -> list[dict[str, Any]]:
    ts = T0 + i
    return [
        {"id": str(i), "model": model, "timestamp": ts, "features": {"x": score},
         "prediction": score, **extra},
        {"id": str(i), "model": model, "timestamp": ts + 1, "label": label},
    ]  # fmt: skip


def test_segment_performance_shows_where_the_model_fails_and_caps_the_values() -> None:
    rng = random.Random(3)
    regions = [f"r{k:02d}" for k in range(14)]  # 14 values, 10 kept
    errors: dict[str, list[int]] = {}
    events: list[dict[str, Any]] = []
    for i in range(6000):
        region = regions[i % len(regions)]
        score = rng.random()
        wrong = rng.random() < (0.5 if region == "r03" else 0.1)
        label = int(score >= 0.5) ^ wrong
        errors.setdefault(region, []).append(int(wrong))
        events += pair("shop", i, score, label, segment={"region": region, "tier": "gold"})
    settings = Settings.model_validate(
        {"defaults": {"segments": ["region"], "performance_window": 10_000}}
    )
    got = replay_samples(events, settings)
    error_rate = series(
        got, "driftline_segment_performance", "value", model="shop", segment="region",
        metric="error_rate",
    )  # fmt: skip
    # The first ten values seen keep their own series; the other four share __other__.
    assert set(error_rate) == {*regions[:10], "__other__"}
    for region in regions[:10]:
        expected = sum(errors[region]) / len(errors[region])
        assert error_rate[region] == pytest.approx(expected, abs=1e-12)
    other = [e for r in regions[10:] for e in errors[r]]
    assert error_rate["__other__"] == pytest.approx(sum(other) / len(other), abs=1e-12)
    assert max(error_rate, key=lambda r: error_rate[r]) == "r03"
    # "tier" is not allow-listed: no series for it.
    assert not any(dict(labels).get("segment") == "tier" for _, labels in got)
    overflow = sample(got, "driftline_model_label_overflow_total", model="shop", label="segment")
    assert overflow == sum(1 for i in range(6000) if i % 14 >= 10)


def test_a_new_model_version_is_visible_and_compared_with_the_old() -> None:
    rng = random.Random(4)
    events: list[dict[str, Any]] = []
    for i in range(4000):
        version = "v1" if i < 2000 else "v2"
        score = rng.random()
        wrong = rng.random() < (0.1 if version == "v1" else 0.3)
        events += pair("churn", i, score, int(score >= 0.5) ^ wrong, model_version=version)
    got = replay_samples(events)
    assert series(got, "driftline_model_version_info", "version", model="churn") == {"v2": 1}
    by_version = series(
        got, "driftline_version_performance", "version", model="churn", metric="error_rate"
    )
    assert set(by_version) == {"v1", "v2"}
    assert by_version["v1"] == pytest.approx(0.1, abs=0.03)
    assert by_version["v2"] == pytest.approx(0.3, abs=0.03)


def test_models_beyond_the_cap_are_counted_but_not_monitored() -> None:
    events = []
    for i in range(300):
        events += pair(["a", "b", "c"][i % 3], i, 0.9, 1)
    got = replay_samples(events, Settings.model_validate({"limits": {"max_models": 2}}))
    by_model = series(got, "driftline_events_total", "model", stream="predictions", status="ok")
    assert by_model == {"a": 100, "b": 100, "__other__": 100}
    joined = series(got, "driftline_joins_total", "model", result="joined")
    assert joined == {"a": 100, "b": 100}


def test_features_beyond_the_cap_or_the_reference_are_counted_not_tracked() -> None:
    events = []
    for i in range(1200):
        features = {f"f{j}": float(i % 7 + j) for j in range(5)}
        if i >= 1000:
            features["late_arrival"] = 1.0  # not in the reference
        events.append(
            {"id": str(i), "model": "m", "timestamp": T0 + i, "features": features,
             "prediction": 0.5}
        )  # fmt: skip
    settings = Settings.model_validate(
        {"limits": {"max_features": 3}, "defaults": {"reference_size": 1000, "window_size": 100}}
    )
    got = replay_samples(events, settings)
    assert set(series(got, "driftline_feature_psi", "feature", model="m")) == {"f0", "f1", "f2"}
    # Per window row: f3, f4 beyond the cap, and late_arrival not in the reference.
    assert sample(got, "driftline_untracked_feature_values_total", model="m") == 200 * 3


@pytest.mark.parametrize(
    ("raw", "kept"),
    [("eu-west-1", True), ("New York", True), ("v2.3.1+build:7", True), ("a" * 64, True)],
)
def test_plain_label_values_are_kept(raw: str, kept: bool) -> None:
    assert (safe_label(raw) == raw) is kept


@pytest.mark.parametrize("raw", ['a"b', "a\\b", "{x}", "é", "a~b", "x" * 65, "", "line\nbreak"])
def test_other_label_values_are_cleaned_bounded_and_kept_apart(raw: str) -> None:
    label = safe_label(raw)
    assert label != raw and len(label) <= 57
    assert all(" " <= ch <= "~" and ch not in '"\\{}' for ch in label)
    assert label.count("~") == 1
    assert safe_label(raw + "!") != label


def shifted_stream(n: int, shift_at: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"id": str(i), "model": "m", "timestamp": T0 + i, "prediction": 0.5,
         "features": {"x": rng.gauss(1.0 if i >= shift_at else 0.0, 1.0)}}
        for i in range(n)
    ]  # fmt: skip


def test_a_pinned_reference_never_changes() -> None:
    settings = Settings.model_validate({"defaults": {"reference_size": 1000, "window_size": 500}})
    got = replay_samples(shifted_stream(8000, 10_000), settings)
    assert sample(got, "driftline_reference_refreshes_total", model="m") == 0
    assert sample(got, "driftline_windows_total", model="m") == 14


def test_a_rolling_reference_follows_stable_data_but_never_learns_a_drift_away() -> None:
    settings = Settings.model_validate(
        {"defaults": {"reference_size": 1000, "window_size": 500, "reference_mode": "rolling"}}
    )
    stable = replay_samples(shifted_stream(8000, 10_000), settings)
    # 7,000 rows after the first reference: a new one every 1,000 stable rows.
    assert sample(stable, "driftline_reference_refreshes_total", model="m") == 7
    shifted = replay_samples(shifted_stream(8000, 3000), settings)
    # Refreshed twice before the shift; after it every window is drifted, so never again.
    assert sample(shifted, "driftline_reference_refreshes_total", model="m") == 2
    assert sample(shifted, "driftline_feature_drift", model="m", feature="x") == 1
    assert sample(shifted, "driftline_drifted_windows_total", model="m") == 10
