"""Rows and errors taken in bulk give what one update per event gives.

The daemon hands the drift windows a model's rows in stretches and the concept
detectors their errors in batches; these tests feed the same seeded streams one event
at a time and in random stretches, and compare every report and the whole state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from typing import Any

import numpy as np
import pytest

from detectors.feature_profile import NumericProfile
from detectors.profile_builder import to_category
from detectors.window_check import WindowChecker
from monitor.config import Settings
from monitor.drift import DriftMonitor, WindowReport
from monitor.events import Prediction
from monitor.model import ModelMonitor
from monitor.outcomes import FLUSH_ERRORS, OutcomeTracker

Row = tuple[float, dict[str, Any], Any]


def _rows(seed: int, n: int, categorical_prediction: bool) -> list[Row]:
    """Seeded rows with drift halfway, absent and untracked features, and values of
    every type a decoded event can hold in the wrong places (after the first 400 rows,
    from which the reference is learned)."""
    rng = random.Random(seed)
    rows: list[Row] = []
    t = 1_000.0
    for i in range(n):
        features: dict[str, Any] = {}
        for j in range(5):
            if rng.random() < 0.95:
                roll = rng.random() if i > 400 else 1.0
                value: Any = rng.gauss(1.5 if i > n // 2 else 0.0, 1.0)
                if roll < 0.02:
                    value = None
                elif roll < 0.03:
                    value = True
                elif roll < 0.04:
                    value = "text"
                features[f"num_{j}"] = value
        for j in range(2):
            if rng.random() < 0.97:
                roll = rng.random() if i > 400 else 0.0
                label: Any = rng.choice("abc") if roll < 0.9 else None
                if roll > 0.95:
                    label = rng.choice([3.0, False])
                features[f"cat_{j}"] = label
        if i > 400 and rng.random() < 0.02:
            features["unseen"] = 1.0
        if categorical_prediction:
            prediction: Any = rng.choice(["yes", "no", 1.0])
        else:
            prediction = rng.random() if i < 400 or rng.random() < 0.98 else "text"
        t += rng.random() * 0.5
        rows.append((t, features, prediction))
    return rows


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _reports(reports: list[WindowReport]) -> str:
    return _text([r.to_state() for r in reports])


@pytest.mark.parametrize("seed", range(24))
def test_drift_monitor_rows_in_stretches_equal_rows_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    settings: dict[str, Any] = {
        "reference_size": rng.choice([60, 300]),
        "window_size": rng.choice([40, 100, 257]),
        "window_seconds": rng.choice([None, 5.0, 30.0]),
        "min_window": rng.choice([10, 100]),
        "rolling": rng.choice([False, True]),
    }
    rows = _rows(seed, 2_500, categorical_prediction=seed % 3 == 0)
    one = DriftMonitor("m", None, **settings)
    many = DriftMonitor("m", None, **settings)
    one_reports = [r for r in (one.add(*row) for row in rows) if r is not None]
    many_reports: list[WindowReport] = []
    start = 0
    while start < len(rows):
        stretch = rows[start : start + rng.choice([1, 2, 7, 64, 600])]
        start += len(stretch)
        times, features, predictions = zip(*stretch, strict=True)
        many_reports += many.add_many(list(times), list(features), list(predictions))
    assert len(one_reports) >= 5
    # The shift is found, unless a short rolling reference learned it away.
    assert any(r.drifted for r in one_reports) or one.refreshes > 0
    assert _reports(many_reports) == _reports(one_reports)
    assert _text(many.to_state()) == _text(one.to_state())
    assert many.untracked_values == one.untracked_values > 0


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_outcome_tracker_batched_detections_equal_one_update_per_pair(task: str) -> None:
    rng = random.Random(7)
    detectors = ("adwin", "page_hinkley", "cusum", "kswin") + (
        ("ddm", "eddm") if task == "binary" else ()
    )
    pairs = []
    for i in range(3 * FLUSH_ERRORS):
        worse = i > FLUSH_ERRORS  # the model gets worse after the first batch
        if task == "binary":
            label = float(rng.random() < 0.5)
            right = rng.random() < (0.7 if worse else 0.9)
            pairs.append((label if right else 1.0 - label, label))
        else:
            label = rng.gauss(0.0, 1.0)
            pairs.append((label + rng.gauss(0.0, 2.0 if worse else 1.0), label))
    batched = OutcomeTracker(task, detectors=detectors)  # type: ignore[arg-type]
    reference = OutcomeTracker(task, detectors=detectors)  # type: ignore[arg-type]
    for i, (prediction, label) in enumerate(pairs):
        assert batched.add(prediction, label, float(i))
        assert reference.add(prediction, label, float(i))
        reference.flush()  # one update per pair
        if rng.random() < 0.001:
            batched.flush()
    state = batched.to_state()  # flushes what waits
    assert sum(batched.concept_drifts.values()) > 0
    assert batched.concept_drifts == reference.concept_drifts
    assert batched.last_concept_drift == reference.last_concept_drift
    assert _text(state) == _text(reference.to_state())


def test_outcome_tracker_skips_a_pair_whose_error_overflows() -> None:
    tracker = OutcomeTracker("regression")
    assert not tracker.add(1e308, -1e308, 0.0)
    assert tracker.add(1.0, 0.5, 1.0)
    tracker.flush()
    assert tracker.pairs == 1


def test_a_flush_that_fails_loses_only_its_own_rows_and_the_next_ones_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.model_validate(
        {"models": {"m": {"segments": ["region"], "reference_size": 50, "window_size": 20}}}
    )
    monitor = ModelMonitor("m", settings.for_model("m"), settings.limits)
    rng = random.Random(3)

    def take(n: int) -> None:
        for i in range(n):
            region = rng.choice(["eu", "us"])
            event = Prediction(
                id=str(i),
                model="m",
                features={"x": rng.random()},
                prediction=0.5,
                segment={"region": region},
            )
            monitor.on_prediction(float(i), event)

    take(60)
    add_many = monitor.drift.add_many

    def fail_once(*args: Any) -> list[WindowReport]:
        monkeypatch.setattr(monitor.drift, "add_many", add_many)
        raise RuntimeError("a window check failed")

    monkeypatch.setattr(monitor.drift, "add_many", fail_once)
    with pytest.raises(RuntimeError, match="a window check failed"):
        monitor.flush()
    rows = monitor.drift.reference_rows
    take(30)  # fewer rows than before: stale segment positions would point past them
    monitor.flush()
    assert monitor.drift.reference_rows == rows + 30
    segment_rows = sum(m.reference_rows for m in monitor._segment_drift.values())
    assert segment_rows == 30  # the failed flush's rows never reached the segments


def _stream(seed: int, task: str) -> list[tuple[Any, float]]:
    """Seeded events of two models: predictions whose version changes (more versions
    than are tracked), outcomes early and late, duplicated and unusable, and signals."""
    from monitor.events import Outcome, Signal

    rng = random.Random(seed)
    events: list[tuple[Any, float]] = []
    waiting: list[tuple[str, str, Any]] = []
    t = 1_000.0
    for i in range(1_500):
        t += rng.random()
        model = rng.choice(["a", "b"])
        if task == "binary":
            prediction: Any = rng.random()
            label: Any = (
                rng.choice([0, 1, 1.0, True, "x"])
                if rng.random() < 0.05
                else int(rng.random() < prediction)
            )
        elif task == "multiclass":
            prediction = rng.choice(["red", "green", "blue"])
            label = prediction if rng.random() < 0.7 else rng.choice(["red", "green"])
        else:
            prediction = rng.gauss(0.0, 1.0)
            label = prediction + rng.gauss(0.0, 1.0) if rng.random() < 0.97 else "x"
        event_id = f"{i - 3 if i > 3 and rng.random() < 0.02 else i}"  # some duplicates
        version = f"v{min(i // 250, 5)}" if rng.random() < 0.95 else None
        region = rng.choice(["eu", "us", "apac"])
        events.append(
            (
                Prediction(
                    id=event_id,
                    model=model,
                    model_version=version,
                    features={"x": rng.gauss(0.0, 1.0), "c": rng.choice("pq")},
                    prediction=prediction,
                    segment={"region": region} if rng.random() < 0.9 else {},
                ),
                t,
            )
        )
        waiting.append((model, event_id, label))
        if rng.random() < 0.05:  # an outcome before its prediction
            events.append((Outcome(id=f"early-{i}", model=model, label=label), t))
            events.append((_early(model, i, prediction, version), t + 0.5))
        while waiting and rng.random() < 0.75:
            m, e, lab = waiting.pop(rng.randrange(len(waiting)))
            events.append((Outcome(id=e, model=m, label=lab), t + rng.random()))
        if rng.random() < 0.02:  # an outcome whose prediction never comes, or too late
            events.append((Outcome(id=f"orphan-{i}", model=model, label=label), t))
            events.append((Outcome(id=f"late-{i}", model=model, label=label), t - 100.0))
        if rng.random() < 0.1:
            signal_id = event_id if rng.random() < 0.8 else f"none-{i}"
            events.append((Signal(model=model, signal="conversion", id=signal_id), t))
    return events


def _early(model: str, i: int, prediction: Any, version: str | None) -> Prediction:
    return Prediction(
        id=f"early-{i}", model=model, model_version=version, features={}, prediction=prediction
    )


@pytest.mark.parametrize("seed", range(12))
def test_pipeline_events_in_batches_equal_one_event_at_a_time(seed: int) -> None:
    from monitor.pipeline import Pipeline

    task = ["binary", "multiclass", "regression"][seed % 3]
    rng = random.Random(seed)
    settings = Settings.model_validate(
        {
            "limits": {"max_versions": 2},
            "join": {"ttl_s": 60.0},
            "defaults": {
                "segments": ["region"],
                "reference_size": 50,
                "window_size": rng.choice([20, 64]),
                "performance_window": rng.choice([7, 50]),
                "concept_detectors": ["adwin", "page_hinkley"],
            },
        }
    )
    events = _stream(seed, task)
    one, many = Pipeline(settings), Pipeline(settings)
    one_statuses = [one.process(event, t) for event, t in events]
    many_statuses: list[str] = []
    start = 0
    while start < len(events):
        stop = start + rng.choice([1, 7, 100, 600, 2_000])
        many_statuses += many.process_many((e, t, 0) for e, t in events[start:stop])
        start = stop
    assert many_statuses == one_statuses
    assert {"duplicate", "unmatched", "late"} <= set(one_statuses)
    state = many.to_state()  # flushes what waits
    assert _text(state) == _text(one.to_state())
    joins = [m[1]["joins"] for m in state["models"]]
    assert task == "multiclass" or all(j["joined"] > 0 and j["unusable"] > 0 for j in joins)
    versions = [[v for v, _ in m[1]["version_outcomes"]] for m in state["models"]]
    assert all(len(v) == 2 for v in versions)  # older versions' trackers were dropped


def _window_columns(rows: list[Row], numeric: set[str], names: tuple[str, ...]) -> dict[str, Any]:
    """A window's columns by the documented rules, value by value: numbers (bools
    excluded) stay in numeric columns and anything else is missing (NaN); labels stay
    labels, other values become theirs, and None or an absent key is missing."""
    columns: dict[str, Any] = {}
    for name in names:
        values = [features.get(name) for _, features, _ in rows]
        if name in numeric:
            columns[name] = np.array(
                [float(v) if type(v) in (float, int) else math.nan for v in values]
            )
        else:
            columns[name] = [None if v is None else to_category(v) for v in values]
    return columns


@pytest.mark.parametrize("seed", range(8))
def test_window_checks_are_those_of_the_columns_built_value_by_value(seed: int) -> None:
    rows = _rows(seed, 300 + 2 * 257, categorical_prediction=seed % 2 == 1)
    monitor = DriftMonitor("m", None, reference_size=300, window_size=257)
    rng = random.Random(seed)
    reports: list[WindowReport] = []
    start = 0
    while start < len(rows):
        stretch = rows[start : start + rng.choice([1, 5, 64, 300])]
        start += len(stretch)
        times, features, predictions = zip(*stretch, strict=True)
        reports += monitor.add_many(list(times), list(features), list(predictions))
    assert monitor.reference is not None and len(reports) == 2
    profile, prediction_profile = monitor.reference.features, monitor.reference.prediction
    assert prediction_profile is not None
    names = monitor.tracked_features
    numeric = {n for n in names if isinstance(profile.features[n], NumericProfile)}
    assert numeric and set(names) - numeric  # both kinds are checked
    for index, report in enumerate(reports):
        window = rows[300 + 257 * index : 300 + 257 * (index + 1)]
        expected = WindowChecker(profile, names).check(_window_columns(window, numeric, names))
        assert _text([_check(c) for c in report.checks.values()]) == _text(
            [_check(c) for c in expected.values()]
        )
        [(name, feature)] = prediction_profile.features.items()
        kind = {name} if isinstance(feature, NumericProfile) else set()
        column = _window_columns([(t, {name: p}, p) for t, _, p in window], kind, (name,))
        assert report.prediction is not None
        assert _text(_check(report.prediction)) == _text(
            _check(WindowChecker(prediction_profile).check(column)[name])
        )


def _check(check: Any) -> list[Any]:
    return [getattr(check, f.name) for f in dataclasses.fields(check)]
