"""Change detectors against their oracles: River 0.26, scipy, and a plain CUSUM recursion.

ADWIN, Page–Hinkley, DDM, EDDM and KSWIN must fire at exactly the indices where
River's detectors of the same name fire, on seeded streams that mix stationary data,
abrupt and gradual shifts of the mean, and tied (integer-valued) data; binary error
streams for DDM and EDDM. KSWIN draws its sample with ``random.Random(seed)`` as River
does, so it is compared exactly too, and each of its tests is checked against
``scipy.stats.ks_2samp`` on the same two samples. River has no CUSUM: it is checked
against the textbook recursion ``C = max(0, C + z)``.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from river import drift as river_drift
from scipy import stats

from detectors.change import ADWIN, CUSUM, DDM, EDDM, KSWIN, ChangeDetector, PageHinkley
from detectors.change.kswin import critical_count, ks_pvalue

SEEDS = range(24)


def real_stream(seed: int, length: int = 2000) -> list[float]:
    """Stationary, abrupt shift, gradual shift, or tied values with shifts, by seed % 4."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    shift = rng.uniform(0.5, 3.0) * rng.choice([-1.0, 1.0])
    kind = seed % 4
    if kind == 0:
        mean = np.zeros(length)
    elif kind == 1:
        mean = np.where(t < length // 2, 0.0, shift)
    elif kind == 2:
        mean = shift * np.clip((t - length / 3) / (length / 3), 0.0, 1.0)
    else:
        mean = np.where(t % (length // 3) < length // 6, 0.0, shift).round()
        return (rng.integers(0, 3, length) + mean).tolist()
    return rng.normal(mean, rng.uniform(0.2, 2.0)).tolist()


def error_stream(seed: int, length: int = 3000) -> list[int]:
    """0/1 errors: stationary, abrupt rise, gradual rise, or a drop of the rate, by seed % 4."""
    rng = np.random.default_rng(10_000 + seed)
    t = np.arange(length)
    low = rng.uniform(0.05, 0.3)
    high = low + rng.uniform(0.05, 0.4)
    rate = [
        np.full(length, low),
        np.where(t < length // 2, low, high),
        low + (high - low) * np.clip((t - length / 3) / (length / 3), 0.0, 1.0),
        np.where(t < length // 2, high, low),
    ][seed % 4]
    return (rng.random(length) < rate).astype(int).tolist()


def detections(detector: Any, values: Sequence[float]) -> list[int]:
    found = []
    for i, x in enumerate(values):
        detector.update(x)
        if detector.drift_detected:
            found.append(i)
    return found


def assert_same_as_river(
    ours: Callable[[], ChangeDetector],
    river: Callable[[], Any],
    streams: list[Sequence[float]],
    least: int,
) -> None:
    total = 0
    for seed, values in enumerate(streams):
        expected = detections(river(), values)
        assert detections(ours(), values) == expected, f"stream {seed}"
        total += len(expected)
    assert total >= least, "the streams should make the detector fire"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"delta": 0.05, "clock": 1},
        {"max_buckets": 2, "min_window_length": 1, "grace_period": 0},
    ],
)
def test_adwin_fires_exactly_where_river_does(params: dict[str, Any]) -> None:
    streams: list[Sequence[float]] = [real_stream(seed) for seed in SEEDS]
    assert_same_as_river(
        lambda: ADWIN(**params), lambda: river_drift.ADWIN(**params), streams, least=10
    )


@pytest.mark.parametrize(
    "params",
    [{}, {"mode": "up", "threshold": 20.0}, {"mode": "down", "alpha": 1.0, "delta": 0.05}],
)
def test_page_hinkley_fires_exactly_where_river_does(params: dict[str, Any]) -> None:
    streams: list[Sequence[float]] = [real_stream(seed) for seed in SEEDS]
    assert_same_as_river(
        lambda: PageHinkley(**params), lambda: river_drift.PageHinkley(**params), streams, 10
    )


@pytest.mark.parametrize(
    "params", [{}, {"warm_start": 100, "warning_threshold": 1.5, "drift_threshold": 2.5}]
)
def test_ddm_fires_exactly_where_river_does(params: dict[str, Any]) -> None:
    streams: list[Sequence[float]] = [error_stream(seed) for seed in SEEDS]
    assert_same_as_river(
        lambda: DDM(**params), lambda: river_drift.binary.DDM(**params), streams, least=10
    )


@pytest.mark.parametrize("params", [{}, {"warm_start": 10, "alpha": 0.8, "beta": 0.7}])
def test_eddm_fires_exactly_where_river_does(params: dict[str, Any]) -> None:
    streams: list[Sequence[float]] = [error_stream(seed) for seed in SEEDS]
    assert_same_as_river(
        lambda: EDDM(**params), lambda: river_drift.binary.EDDM(**params), streams, least=10
    )


def test_ddm_and_eddm_raise_the_same_warnings_as_river() -> None:
    for seed in SEEDS:
        values = error_stream(seed, 1500)
        pairs: list[tuple[DDM | EDDM, Any]] = [
            (DDM(), river_drift.binary.DDM()),
            (EDDM(), river_drift.binary.EDDM()),
        ]
        for ours, theirs in pairs:
            for x in values:
                ours.update(x)
                theirs.update(x)
                assert ours.warning_detected == theirs.warning_detected


@pytest.mark.parametrize(
    ("params", "length"),
    [({}, 500), ({"alpha": 0.05, "window_size": 40, "stat_size": 15}, 300)],
)
def test_kswin_with_the_same_seed_fires_exactly_where_river_does(
    params: dict[str, Any], length: int
) -> None:
    streams: list[Sequence[float]] = [real_stream(seed, length) for seed in range(20)]
    total = 0
    for seed, values in enumerate(streams):
        with warnings.catch_warnings():  # River leaves scipy's RuntimeWarning to the caller
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = detections(river_drift.KSWIN(seed=seed, **params), values)
        assert detections(KSWIN(seed=seed, **params), values) == expected, f"stream {seed}"
        total += len(expected)
    assert total >= 10


@pytest.mark.parametrize("seed", range(5))
def test_each_kswin_test_equals_scipy_ks_2samp_on_the_same_samples(seed: int) -> None:
    values = real_stream(seed, 400)
    kswin = KSWIN(seed=seed)
    rng = random.Random(seed)  # the sampling KSWIN does, replayed
    window: list[float] = []
    for x in values:
        if kswin.drift_detected:
            window, rng = [], random.Random(seed)
        kswin.update(x)
        window = (window + [x])[-100:]
        if len(window) < 100:
            continue
        sampled = [window[i] for i in rng.sample(range(70), 30)]
        oracle = stats.ks_2samp(sampled, window[70:], method="auto")
        assert kswin.statistic == float(oracle.statistic)
        assert kswin.p_value == pytest.approx(float(oracle.pvalue), rel=1e-12, abs=0)
        assert kswin.drift_detected == (oracle.pvalue <= 0.005 and oracle.statistic > 0.1)


@pytest.mark.parametrize("size", [1, 5, 15, 30, 64, 100])
def test_the_ks_p_value_never_increases_with_the_distance(size: int) -> None:
    pvalues = [ks_pvalue(size, count) for count in range(size + 1)]
    assert all(a >= b for a, b in zip(pvalues, pvalues[1:], strict=False))
    for alpha in (1e-4, 0.005, 0.05, 0.5):
        critical = critical_count(size, alpha)
        fires = [p <= alpha and c / size > 0.1 for c, p in enumerate(pvalues)]
        assert fires == [c >= critical for c in range(size + 1)]


def textbook_cusum(
    values: Sequence[float], mean: float, sigma: float, k: float, h: float
) -> list[int]:
    """Montgomery's tabular CUSUM, restarted after each alarm."""
    upper = lower = 0.0
    found = []
    for i, x in enumerate(values):
        upper = max(0.0, upper + x - mean - k * sigma)
        lower = max(0.0, lower + mean - k * sigma - x)
        if upper > h * sigma or lower > h * sigma:
            found.append(i)
            upper = lower = 0.0
    return found


@pytest.mark.parametrize("seed", SEEDS)
def test_cusum_with_known_parameters_fires_where_the_textbook_recursion_does(seed: int) -> None:
    values = real_stream(seed)
    sigma = float(np.std(values[:200]))
    expected = textbook_cusum(values, values[0], sigma, 0.5, 4.0)
    cusum = CUSUM(target=values[0], sigma=sigma, k=0.5, h=4.0)
    assert detections(cusum, values) == expected


def test_cusum_estimates_its_target_and_scale_from_the_warm_up_like_numpy() -> None:
    values = real_stream(5)
    cusum = CUSUM(min_instances=50)
    for x in values[:50]:
        cusum.update(x)
    assert cusum.reference == pytest.approx(np.mean(values[:50]), rel=1e-14)
    assert cusum.scale == pytest.approx(np.std(values[:50], ddof=1), rel=1e-14)
    assert cusum.upper == cusum.lower == 0.0
