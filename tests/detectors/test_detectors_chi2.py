"""Chi-square homogeneity test against scipy.stats.chi2_contingency over many seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detectors import OTHER, CategoricalProfile, DriftResult, build_profile, chi2_test

SEEDS = range(30)
LABELS = np.array(list("abcdefghij"))


def profile_of(labels: list[str], top_k: int = 50) -> CategoricalProfile:
    feature = build_profile(({"c": v} for v in labels), top_k=top_k).categorical("c")
    assert isinstance(feature, CategoricalProfile)
    return feature


def oracle_table(window: list[str], feature: CategoricalProfile) -> np.ndarray:
    kept = [k for k in feature.counts if k != OTHER]
    reference = [feature.counts[k] for k in kept] + [feature.counts.get(OTHER, 0)]
    observed = [window.count(k) for k in kept] + [sum(v not in kept for v in window)]
    table = np.array([reference, observed])
    return table[:, table.sum(axis=0) > 0]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("correction", [True, False])
def test_chi2_equals_scipy_contingency_with_top_k_and_unseen_labels(
    seed: int, correction: bool
) -> None:
    rng = np.random.default_rng(seed)
    n_labels = int(rng.integers(2, 10))
    reference = rng.choice(LABELS[:n_labels], size=int(rng.integers(20, 2000))).tolist()
    window = rng.choice(LABELS, size=int(rng.integers(1, 500))).tolist()
    feature = profile_of(reference, top_k=int(rng.integers(1, 10)))
    oracle = stats.chi2_contingency(oracle_table(window, feature), correction=correction)
    result = chi2_test(window, feature, correction=correction)
    assert result.statistic == pytest.approx(float(oracle.statistic), abs=1e-9, rel=1e-12)
    assert result.pvalue == pytest.approx(float(oracle.pvalue), abs=1e-9, rel=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_chi2_with_two_categories_applies_yates_correction_like_scipy(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    reference = ["true" if v else "false" for v in rng.random(int(rng.integers(5, 400))) < 0.3]
    window = ["true" if v else "false" for v in rng.random(int(rng.integers(5, 100))) < 0.4]
    feature = profile_of(reference)
    oracle = stats.chi2_contingency(oracle_table(window, feature))
    result = chi2_test(window, feature)
    assert result.statistic == pytest.approx(float(oracle.statistic), abs=1e-9, rel=1e-12)
    assert result.pvalue == pytest.approx(float(oracle.pvalue), abs=1e-9, rel=0)


def test_a_single_category_in_reference_and_window_gives_no_evidence() -> None:
    assert chi2_test(["a"] * 5, profile_of(["a"] * 20)) == DriftResult(0.0, 1.0)


def test_a_category_the_reference_never_saw_is_strong_evidence() -> None:
    result = chi2_test(["a"] * 90 + ["new"] * 10, profile_of(["a"] * 1000))
    assert result.pvalue is not None and result.pvalue < 1e-10


def test_chi2_p_values_under_no_drift_give_about_five_percent_false_alarms() -> None:
    rng = np.random.default_rng(7)
    shares = [0.5, 0.3, 0.15, 0.05]
    feature = profile_of(rng.choice(LABELS[:4], size=20_000, p=shares).tolist())
    windows = (rng.choice(LABELS[:4], 300, p=shares).tolist() for _ in range(400))
    pvalues = np.array([chi2_test(window, feature).pvalue for window in windows])
    assert 0.02 <= np.mean(pvalues < 0.05) <= 0.09


def test_chi2_rejects_numeric_references_empty_windows_and_non_string_labels() -> None:
    feature = profile_of(["a", "b"])
    with pytest.raises(ValueError, match="chi2_test needs a categorical reference, got a numeric"):
        chi2_test(["a"], build_profile([{"x": 1.0}]).numeric("x"))
    with pytest.raises(ValueError, match="chi2_test window must hold at least one value"):
        chi2_test([], feature)
    with pytest.raises(ValueError, match="chi2_test window labels must be str .* got bool True"):
        chi2_test([True], feature)  # type: ignore[list-item]
