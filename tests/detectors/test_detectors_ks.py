"""Kolmogorov-Smirnov against scipy.stats.ks_2samp over many seeds, and its false-alarm rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detectors import DriftResult, NumericProfile, build_profile, ks_test
from detectors import ks as ks_module

SEEDS = range(30)


def profile_of(values: np.ndarray, max_sample: int = 10_000) -> NumericProfile:
    feature = build_profile(({"x": v} for v in values.tolist()), max_sample=max_sample)
    numeric = feature.numeric("x")
    assert isinstance(numeric, NumericProfile)
    return numeric


def assert_matches_scipy(window: np.ndarray, feature: NumericProfile) -> None:
    result = ks_test(window, feature)
    oracle = stats.ks_2samp(window, feature.sample)
    assert result.statistic == pytest.approx(float(oracle.statistic), abs=1e-9, rel=0)
    assert result.pvalue == pytest.approx(float(oracle.pvalue), abs=1e-9, rel=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_equals_scipy_for_unequal_sizes_with_the_exact_p_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=int(rng.integers(1, 4000)))
    window = rng.normal(rng.uniform(0, 0.3), size=int(rng.integers(1, 1500)))
    assert_matches_scipy(window, profile_of(reference))


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_equals_scipy_for_equal_sizes_and_tied_values(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    size = int(rng.integers(1, 600))
    reference = rng.poisson(3.0, size=size).astype(float)
    window = rng.poisson(3.0 + rng.uniform(0, 1), size=size).astype(float)
    assert_matches_scipy(window, profile_of(reference))


@pytest.mark.parametrize("seed", range(5))
def test_ks_equals_scipy_past_ten_thousand_values_with_the_asymptotic_p_value(seed: int) -> None:
    rng = np.random.default_rng(2000 + seed)
    reference = rng.exponential(size=3000)
    window = rng.exponential(1.0 + 0.02 * seed, size=10_001 + int(rng.integers(0, 2000)))
    assert_matches_scipy(window, profile_of(reference))


@pytest.mark.parametrize("seed", range(5))
def test_ks_uses_the_subsample_when_the_reference_exceeds_max_sample(seed: int) -> None:
    rng = np.random.default_rng(3000 + seed)
    feature = profile_of(rng.normal(size=2500), max_sample=800)
    assert feature.sample.size == 800
    assert_matches_scipy(rng.normal(size=300), feature)


def test_ks_detects_a_shift_and_a_change_of_spread() -> None:
    rng = np.random.default_rng(9)
    feature = profile_of(rng.normal(size=5000))
    shifted = ks_test(rng.normal(0.5, 1, 500), feature)
    wider = ks_test(rng.normal(0, 2, 500), feature)
    assert shifted.pvalue is not None and shifted.pvalue < 1e-10
    assert wider.pvalue is not None and wider.pvalue < 1e-10


def test_a_window_equal_to_the_reference_has_statistic_zero_and_p_value_one() -> None:
    values = np.random.default_rng(4).normal(size=300)
    assert ks_test(values, profile_of(values)) == DriftResult(0.0, 1.0)


def test_ks_p_values_under_no_drift_give_about_five_percent_false_alarms() -> None:
    rng = np.random.default_rng(20_240_601)
    feature = profile_of(rng.normal(size=5000))
    pvalues = np.array([ks_test(rng.normal(size=200), feature).pvalue for _ in range(400)])
    assert 0.02 <= np.mean(pvalues < 0.05) <= 0.09
    # Roughly uniform across the whole range too, not just the tail.
    assert 0.4 <= np.mean(pvalues < 0.5) <= 0.6


def test_the_exact_null_distribution_comes_from_scipy_not_the_fallback() -> None:
    # If scipy moves its private helper, ks_test still agrees with scipy, but more slowly;
    # this test says so before anyone notices the slowdown.
    assert ks_module._exact_2kssamp() is not None


def test_ks_rejects_empty_windows_and_categorical_references() -> None:
    numeric = profile_of(np.arange(5.0))
    categorical = build_profile([{"c": "a"}]).categorical("c")
    with pytest.raises(ValueError, match="ks_test window must hold at least one value"):
        ks_test([], numeric)
    with pytest.raises(ValueError, match="ks_test needs a numeric reference, got a categorical"):
        ks_test([1.0], categorical)
    with pytest.raises(ValueError, match="ks_test window must be one-dimensional"):
        ks_test(np.ones((2, 2)), numeric)


@pytest.mark.parametrize("method", ["auto", "exact", "asymp"])
@pytest.mark.parametrize("seed", SEEDS)
def test_each_method_equals_scipy_with_the_same_method(method: str, seed: int) -> None:
    rng = np.random.default_rng(4000 + seed)
    reference = rng.normal(size=int(rng.integers(1, 1200)))
    window = rng.normal(rng.uniform(0, 0.4), size=int(rng.integers(1, 400)))
    if seed % 3 == 0:  # ties within and across the samples
        reference, window = np.round(reference, 1), np.round(window, 1)
    feature = profile_of(reference)
    result = ks_test(window, feature, method=method)  # type: ignore[arg-type]
    oracle = stats.ks_2samp(window, feature.sample, method=method)
    assert result.statistic == pytest.approx(float(oracle.statistic), abs=1e-9, rel=0)
    assert result.pvalue == pytest.approx(float(oracle.pvalue), abs=1e-9, rel=0)


def test_the_asymptotic_method_never_runs_the_exact_recursion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("the exact recursion ran")

    monkeypatch.setattr(ks_module, "_exact_2kssamp", lambda: fail)
    rng = np.random.default_rng(5)
    result = ks_test(rng.normal(size=800), profile_of(rng.normal(size=3000)), method="asymp")
    assert result.pvalue is not None and 0 <= result.pvalue <= 1


def test_an_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="method must be one of .* got 'fast'"):
        ks_test([1.0], profile_of(np.arange(5.0)), method="fast")  # type: ignore[arg-type]
