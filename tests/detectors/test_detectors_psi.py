"""PSI against direct numpy over many seeds, categorical handling, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import OTHER, build_profile, psi

SEEDS = range(30)


def direct_psi(expected: np.ndarray, observed: np.ndarray, epsilon: float) -> float:
    p = np.maximum(expected / expected.sum(), epsilon)
    q = np.maximum(observed / observed.sum(), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.mark.parametrize("seed", SEEDS)
def test_numeric_psi_equals_direct_numpy_on_the_reference_deciles(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.gamma(2.0, size=int(rng.integers(200, 3000)))
    window = rng.gamma(2.0 + rng.uniform(0, 1), size=int(rng.integers(1, 800)))
    feature = build_profile({"x": v} for v in reference.tolist()).numeric("x")
    deciles = np.quantile(reference, np.arange(1, 10) / 10)
    expected = np.bincount(np.digitize(reference, deciles, right=True), minlength=10)
    observed = np.bincount(np.digitize(window, deciles, right=True), minlength=10)
    result = psi(window, feature)
    assert result.statistic == pytest.approx(direct_psi(expected, observed, 1e-4), abs=1e-12)
    assert result.pvalue is None


@pytest.mark.parametrize("seed", SEEDS)
def test_categorical_psi_equals_direct_numpy_with_unseen_labels_in_other(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array(list("abcdefgh"))
    reference = rng.choice(labels[:6], size=500, p=rng.dirichlet(np.ones(6)))
    window = rng.choice(labels, size=int(rng.integers(1, 300)), p=rng.dirichlet(np.ones(8)))
    feature = build_profile({"c": str(v)} for v in reference).categorical("c")
    kept = [k for k in feature.counts if k != OTHER]
    expected = np.array([feature.counts[k] for k in kept] + [feature.counts.get(OTHER, 0)])
    observed = np.array([(window == k).sum() for k in kept] + [(~np.isin(window, kept)).sum()])
    result = psi(window.tolist(), feature, epsilon=1e-3)
    assert result.statistic == pytest.approx(direct_psi(expected, observed, 1e-3), abs=1e-12)


def test_a_window_with_the_reference_bin_shares_has_zero_psi() -> None:
    values = np.arange(1000, dtype=float)
    feature = build_profile({"x": v} for v in values.tolist()).numeric("x")
    assert psi(values[::10], feature).statistic == pytest.approx(0.0, abs=1e-12)


def test_psi_grows_with_the_size_of_a_shift() -> None:
    rng = np.random.default_rng(11)
    feature = build_profile({"x": v} for v in rng.normal(size=5000).tolist()).numeric("x")
    values = [psi(rng.normal(shift, 1, 2000), feature).statistic for shift in (0, 0.25, 0.5, 1)]
    assert values == sorted(values)
    assert values[0] < 0.02 < 0.1 < values[2]


def test_a_new_category_raises_psi_through_other() -> None:
    feature = build_profile({"c": v} for v in ["a", "b"] * 100).categorical("c")
    assert psi(["a", "b"] * 10, feature).statistic == pytest.approx(0.0, abs=1e-12)
    assert psi(["a", "b"] * 9 + ["new", "new"], feature).statistic > 0.5


def test_values_beyond_the_reference_range_land_in_the_outer_bins() -> None:
    feature = build_profile({"x": float(v)} for v in range(100)).numeric("x")
    assert psi(np.full(50, 1e9), feature).statistic == psi(np.full(50, 99.0), feature).statistic


@pytest.mark.parametrize("epsilon", [0.0, 1.0, -1e-4, float("nan"), "0.1"])
def test_an_epsilon_outside_zero_to_one_is_rejected(epsilon: object) -> None:
    feature = build_profile([{"x": 1.0}]).numeric("x")
    with pytest.raises(ValueError, match="epsilon must be a number in \\(0, 1\\), got"):
        psi([1.0], feature, epsilon=epsilon)  # type: ignore[arg-type]


def test_an_empty_window_is_rejected_with_a_clear_message() -> None:
    numeric = build_profile([{"x": 1.0}]).numeric("x")
    categorical = build_profile([{"c": "a"}]).categorical("c")
    with pytest.raises(ValueError, match="psi window must hold at least one value, got an empty"):
        psi(np.array([]), numeric)
    with pytest.raises(ValueError, match="psi window must hold at least one value, got an empty"):
        psi([], categorical)


def test_a_window_with_missing_or_infinite_values_is_rejected() -> None:
    feature = build_profile([{"x": 1.0}]).numeric("x")
    with pytest.raises(ValueError, match="must be finite .* got 2 non-finite of 3"):
        psi([1.0, np.nan, np.inf], feature)
    with pytest.raises(ValueError, match="psi window must hold numbers"):
        psi(["a"], feature)


def test_a_window_of_the_wrong_kind_is_rejected() -> None:
    categorical = build_profile([{"c": "a"}]).categorical("c")
    with pytest.raises(ValueError, match="window labels must be str .* got float 1.0"):
        psi([1.0], categorical)
    with pytest.raises(ValueError, match="sequence of labels, got a single str"):
        psi("abc", categorical)
