"""Performance metrics equal scikit-learn's on the same pairs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from monitor.performance import PerformanceWindow, Task, error_of, errors_of, infer_task


@pytest.mark.parametrize("seed", range(20))
def test_binary_metrics_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = rng.integers(0, 2, n)
    score = np.clip(y * 0.3 + rng.uniform(0, 0.7, n), 0, 1).round(2)  # ties on purpose
    window = PerformanceWindow("binary", size=1000, threshold=0.5)
    for p, t in zip(score.tolist(), y.tolist(), strict=True):
        assert window.add(p, t)
    got = window.metrics()
    predicted = (score >= 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted), abs=1e-12)
    assert got["error_rate"] == pytest.approx(1 - skm.accuracy_score(y, predicted), abs=1e-12)
    assert got["precision"] == pytest.approx(skm.precision_score(y, predicted), abs=1e-12)
    assert got["recall"] == pytest.approx(skm.recall_score(y, predicted), abs=1e-12)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert got["log_loss"] == pytest.approx(
        skm.log_loss(y, np.clip(score, 1e-15, 1 - 1e-15)), abs=1e-9
    )
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, score), abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_multiclass_and_regression_metrics_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = np.array(["cat", "dog", "eel"])
    truth = classes[rng.integers(0, 3, 300)]
    pred = np.where(rng.uniform(size=300) < 0.7, truth, classes[rng.integers(0, 3, 300)])
    window = PerformanceWindow("multiclass")
    for p, t in zip(pred.tolist(), truth.tolist(), strict=True):
        window.add(p, t)
    got = window.metrics()
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, pred))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(truth, pred, average="macro"))

    y = rng.normal(size=200)
    yhat = y + rng.normal(0, 0.3, 200)
    reg = PerformanceWindow("regression")
    for p, t in zip(yhat.tolist(), y.tolist(), strict=True):
        reg.add(p, t)
    assert reg.metrics()["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat))
    assert reg.metrics()["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)))


def test_the_window_slides_and_keeps_only_the_last_pairs() -> None:
    window = PerformanceWindow("binary", size=4)
    for p, t in [(0.9, 0), (0.9, 0), (0.9, 1), (0.1, 0), (0.8, 1), (0.2, 0)]:
        window.add(p, t)
    assert len(window) == 4
    assert window.metrics()["accuracy"] == 1.0  # the two misses slid out


def test_undefined_metrics_are_left_out() -> None:
    window = PerformanceWindow("binary")
    window.add(0.2, 0)
    window.add(0.3, 0)
    assert set(window.metrics()) == {"accuracy", "error_rate", "log_loss", "brier"}
    assert PerformanceWindow("regression").metrics() == {}


def test_pairs_that_do_not_fit_the_task_are_refused() -> None:
    window = PerformanceWindow("binary")
    assert not window.add(0.5, 2)
    assert not window.add("yes", 1)
    assert len(window) == 0


@pytest.mark.parametrize(
    ("prediction", "label", "task"),
    [
        (0.8, 1, "binary"),
        (0.8, True, "binary"),
        ("cat", "dog", "multiclass"),
        (3.5, 2.0, "regression"),
        (1.5, 1, "regression"),
        (0.5, 7, "regression"),
        (True, 1, None),
    ],
)
def test_the_task_is_inferred_from_a_pair(
    prediction: object, label: object, task: str | None
) -> None:
    assert infer_task(prediction, label) == task


def test_errors_feed_the_concept_drift_detectors() -> None:
    assert error_of("binary", 0.7, 1) == 0.0
    assert error_of("binary", 0.7, 0) == 1.0
    assert error_of("binary", 0.7, 0, threshold=0.8) == 0.0
    assert error_of("multiclass", "a", "b") == 1.0
    assert error_of("regression", 2.5, 1.0) == 1.5
    assert error_of("binary", 0.7, 5) is None


def test_state_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    for task, gen in [
        ("binary", lambda: (float(rng.uniform()), int(rng.integers(0, 2)))),
        ("multiclass", lambda: (str(rng.integers(0, 3)), str(rng.integers(0, 3)))),
        ("regression", lambda: (float(rng.normal()), float(rng.normal()))),
    ]:
        window = PerformanceWindow(task, size=50)  # type: ignore[arg-type]
        for _ in range(73):
            window.add(*gen())
        restored = PerformanceWindow.from_state(json.loads(json.dumps(window.to_state())))
        assert restored.metrics() == window.metrics()
        pair = gen()
        window.add(*pair)
        restored.add(*pair)
        assert restored.metrics() == window.metrics()
        assert restored.to_state() == window.to_state()


_VALUE = st.one_of(
    st.sampled_from([0.0, 1.0, 0.5, 1e308, -1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-3, 3),
    st.booleans(),
    st.sampled_from(["a", "1"]),
)


@given(
    task=st.sampled_from(["binary", "multiclass", "regression"]),
    pairs=st.lists(st.tuples(_VALUE, _VALUE), min_size=1, max_size=40),
    floats_only=st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_errors_of_a_batch_are_error_of_each_pair(
    task: Task, pairs: list[tuple[object, object]], floats_only: bool
) -> None:
    if floats_only:  # the array path: every prediction and label a float
        pairs = [(float(p), float(y)) for p, y in pairs if type(p) is float and type(y) is float]
        pairs = pairs or [(0.7, 1.0)]
    predictions, labels = [p for p, _ in pairs], [y for _, y in pairs]
    got = errors_of(task, predictions, labels, 0.5)
    expected = [error_of(task, p, y, 0.5) for p, y in pairs]
    assert [type(e) for e in got] == [type(e) for e in expected]
    assert got == expected


def test_binary_errors_of_floats_are_the_thresholded_misses() -> None:
    assert errors_of("binary", [0.2, 0.5, 0.9, 0.4], [0.0, 0.0, 1.0, 1.0], 0.5) == [
        0.0,
        1.0,
        0.0,
        1.0,
    ]
    assert errors_of("regression", [1e308, 2.5], [-1e308, 1.0]) == [math.inf, 1.5]
