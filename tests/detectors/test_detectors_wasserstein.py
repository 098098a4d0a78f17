"""Wasserstein-1 against scipy over many seeds, and the meaning of its scaling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors import NumericProfile, build_profile, reference_scale, wasserstein

SEEDS = range(30)


def profile_of(values: np.ndarray, max_sample: int = 10_000) -> NumericProfile:
    feature = build_profile(({"x": v} for v in values.tolist()), max_sample=max_sample)
    numeric = feature.numeric("x")
    assert isinstance(numeric, NumericProfile)
    return numeric


@pytest.mark.parametrize("seed", SEEDS)
def test_the_unscaled_distance_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.standard_t(3, size=int(rng.integers(1, 3000))) * 10
    window = rng.standard_t(3, size=int(rng.integers(1, 800))) * 10 + rng.uniform(-2, 2)
    feature = profile_of(np.round(reference, int(rng.integers(0, 3))), max_sample=2000)
    oracle = stats.wasserstein_distance(window, feature.sample)
    result = wasserstein(window, feature, normalise=False)
    assert result.statistic == pytest.approx(oracle, rel=1e-12, abs=1e-12)
    assert result.pvalue is None


@pytest.mark.parametrize("seed", SEEDS)
def test_the_scaled_distance_is_scipys_over_the_robust_sigma_of_the_sample(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    feature = profile_of(rng.normal(5, 3, size=int(rng.integers(20, 3000))))
    window = rng.normal(5, 3, size=200)
    q75, q25 = np.percentile(feature.sample, [75, 25])
    expected = stats.wasserstein_distance(window, feature.sample) / ((q75 - q25) / 1.3489795)
    assert wasserstein(window, feature).statistic == pytest.approx(expected, rel=1e-7)


def test_a_shift_of_half_a_sigma_reads_as_about_one_half_in_any_units() -> None:
    rng = np.random.default_rng(3)
    base, window = rng.normal(size=20_000), rng.normal(0.5, 1, size=5000)
    for units in (1e-3, 1.0, 1e4):
        feature = profile_of(base * units + 7 * units)
        statistic = wasserstein(window * units + 7 * units, feature).statistic
        assert statistic == pytest.approx(0.5, abs=0.05)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.integers(-1000, 1000), min_size=2, max_size=50, unique=True),
    factor=st.floats(1e-3, 1e3),
    offset=st.floats(-1e3, 1e3),
)
def test_the_scaled_distance_does_not_depend_on_the_features_units(
    values: list[int], factor: float, offset: float
) -> None:
    # Any non-constant reference; a constant one has no scale to divide by.
    reference = np.array(values) / 10.0
    window = reference[::2] + 1.0
    plain = wasserstein(window, profile_of(reference)).statistic
    moved = wasserstein(window * factor + offset, profile_of(reference * factor + offset))
    assert moved.statistic == pytest.approx(plain, rel=1e-6, abs=1e-9)


def test_the_scale_falls_back_to_sigma_then_to_one() -> None:
    mostly_zero = profile_of(np.array([0.0] * 95 + [10.0] * 5))
    assert reference_scale(mostly_zero) == pytest.approx(np.std([0.0] * 95 + [10.0] * 5))
    constant = profile_of(np.full(10, 4.0))
    assert reference_scale(constant) == 1.0
    assert wasserstein([6.0, 6.0], constant).statistic == 2.0


def test_wasserstein_rejects_empty_windows_and_categorical_references() -> None:
    with pytest.raises(ValueError, match="wasserstein window must hold at least one value"):
        wasserstein([], profile_of(np.arange(3.0)))
    with pytest.raises(ValueError, match="wasserstein needs a numeric reference"):
        wasserstein([1.0], build_profile([{"c": "a"}]).categorical("c"))
