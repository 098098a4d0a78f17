"""Jensen-Shannon distance against scipy over many seeds, and its bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from detectors import OTHER, build_profile, jensen_shannon

SEEDS = range(30)


@pytest.mark.parametrize("seed", SEEDS)
def test_numeric_distance_equals_scipy_on_the_reference_bins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.lognormal(size=int(rng.integers(50, 3000)))
    window = rng.lognormal(rng.uniform(0, 1), size=int(rng.integers(1, 800)))
    feature = build_profile({"x": v} for v in reference.tolist()).numeric("x")
    deciles = np.quantile(reference, np.arange(1, 10) / 10)
    p = np.bincount(np.digitize(reference, deciles, right=True), minlength=10)
    q = np.bincount(np.digitize(window, deciles, right=True), minlength=10)
    result = jensen_shannon(window, feature)
    assert result.statistic == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-9)
    assert result.pvalue is None


@pytest.mark.parametrize("seed", SEEDS)
def test_categorical_distance_equals_scipy_with_unseen_labels_in_other(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    reference = rng.choice(list("abcde"), size=300).tolist()
    window = rng.choice(list("abcdefg"), size=int(rng.integers(1, 200))).tolist()
    feature = build_profile(({"c": v} for v in reference), top_k=3).categorical("c")
    kept = [k for k in feature.counts if k != OTHER]
    p = [feature.counts[k] for k in kept] + [feature.counts.get(OTHER, 0)]
    q = [window.count(k) for k in kept] + [sum(v not in kept for v in window)]
    result = jensen_shannon(window, feature)
    assert result.statistic == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-9)


def test_equal_distributions_are_at_distance_zero_and_disjoint_ones_at_one() -> None:
    feature = build_profile({"x": float(v)} for v in range(100)).numeric("x")
    assert jensen_shannon(np.arange(100.0), feature).statistic == pytest.approx(0.0, abs=1e-7)
    labels = build_profile({"c": v} for v in "abab").categorical("c")
    assert jensen_shannon(["new"] * 3, labels).statistic == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    reference=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=60),
    window=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=60),
)
def test_the_distance_always_lies_between_zero_and_one(
    reference: list[float], window: list[float]
) -> None:
    feature = build_profile({"x": v} for v in reference).numeric("x")
    assert 0.0 <= jensen_shannon(window, feature).statistic <= 1.0


def test_an_empty_window_is_rejected() -> None:
    feature = build_profile([{"c": "a"}]).categorical("c")
    with pytest.raises(ValueError, match="jensen_shannon window must hold at least one value"):
        jensen_shannon([], feature)
