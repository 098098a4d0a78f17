"""WindowChecker against the single-feature tests and scipy, over seeds and hypothesis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors import (
    FeatureCheck,
    FeatureValue,
    Profile,
    WindowChecker,
    build_profile,
    chi2_test,
    ks_test,
    psi,
)

SEEDS = range(30)
LABELS = list("abcdef")


def random_data(rng: np.random.Generator) -> tuple[Profile, dict[str, Any]]:
    """A profile with numeric, tied numeric and categorical features, and one window."""
    n_ref, n_win = int(rng.integers(2, 2500)), int(rng.integers(1, 1200))
    reference = {
        "normal": rng.normal(size=n_ref),
        "gamma": rng.gamma(2.0, size=n_ref),
        "counts": rng.poisson(3.0, size=n_ref).astype(float),
        "plan": rng.choice(LABELS[:4], n_ref, p=rng.dirichlet(np.ones(4))),
    }
    rows = [{k: (str(v[i]) if k == "plan" else float(v[i])) for k, v in reference.items()}
            for i in range(n_ref)]  # fmt: skip
    profile = build_profile(rows, max_sample=int(rng.integers(2, 3000)))
    normal = rng.normal(rng.uniform(0, 0.3), size=n_win)
    normal[rng.random(n_win) < 0.1] = np.nan
    plan: list[str | None] = rng.choice(LABELS, n_win, p=rng.dirichlet(np.ones(6))).tolist()
    step = int(rng.integers(2, 50))
    plan[::step] = [None] * len(plan[::step])
    window = {
        "normal": normal,
        "gamma": rng.gamma(2.0 + rng.uniform(0, 0.5), size=n_win),
        "counts": rng.poisson(3.0 + rng.uniform(0, 1), size=n_win).astype(float),
        "plan": plan,
    }
    return profile, window


def assert_matches_single_feature_tests(profile: Profile, window: dict[str, Any]) -> None:
    checks = WindowChecker.from_profile(profile).check(window)
    assert list(checks) == list(profile.features)
    for name, check in checks.items():
        feature = profile.features[name]
        if check.kind == "numeric":
            values = window[name][~np.isnan(window[name])]
            expected = ks_test(values, feature, method="asymp")
            oracle = stats.ks_2samp(values, profile.numeric(name).sample, method="asymp")
            assert check.statistic == pytest.approx(float(oracle.statistic), abs=1e-9, rel=0)
            assert check.pvalue == pytest.approx(float(oracle.pvalue), abs=1e-9, rel=0)
        else:
            values = [v for v in window[name] if v is not None]
            expected = chi2_test(values, feature)
        assert check.count == len(values)
        assert check.statistic == pytest.approx(expected.statistic, abs=1e-9, rel=0)
        assert check.pvalue == pytest.approx(expected.pvalue, abs=1e-9, rel=0)
        assert check.psi == pytest.approx(psi(values, feature).statistic, abs=1e-9, rel=0)
        assert check.missing_ratio == pytest.approx(1 - len(values) / len(window[name]))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_window_check_equals_psi_ks_and_chi2_feature_by_feature(seed: int) -> None:
    assert_matches_single_feature_tests(*random_data(np.random.default_rng(seed)))


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1))
def test_a_window_check_equals_the_single_feature_tests_for_any_seed(seed: int) -> None:
    assert_matches_single_feature_tests(*random_data(np.random.default_rng(seed)))


@pytest.mark.parametrize("method", ["auto", "exact"])
def test_the_exact_and_auto_methods_equal_ks_test_with_that_method(method: str) -> None:
    rng = np.random.default_rng(17)
    profile = build_profile({"x": v} for v in rng.normal(size=800).tolist())
    window = rng.normal(0.1, size=300)
    check = WindowChecker.from_profile(profile, ks_method=method).check({"x": window})["x"]  # type: ignore[arg-type]
    expected = ks_test(window, profile.numeric("x"), method=method)  # type: ignore[arg-type]
    assert (check.statistic, check.pvalue) == pytest.approx((expected.statistic, expected.pvalue))


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=80)
@given(
    reference=st.lists(finite, min_size=1, max_size=60),
    window=st.lists(st.floats(), max_size=60),
    labels=st.lists(st.sampled_from(["a", "b", "c", "__other__"]), min_size=1, max_size=30),
    window_labels=st.lists(st.sampled_from(["a", "b", "z", "__other__", None]), max_size=30),
)
def test_any_input_is_accepted_and_gives_values_in_range(
    reference: list[float], window: list[float], labels: list[str], window_labels: list[str | None]
) -> None:
    rows: list[dict[str, FeatureValue]] = [
        {"x": x, "c": labels[i % len(labels)]} for i, x in enumerate(reference)
    ]
    checks = WindowChecker.from_profile(build_profile(rows, top_k=2)).check(
        {"x": np.array(window, dtype=np.float64), "c": window_labels}
    )
    for check in checks.values():
        assert 0.0 <= check.missing_ratio <= 1.0
        if check.count == 0:
            assert np.isnan([check.psi, check.statistic, check.pvalue, check.outside_ratio]).all()
            continue
        assert check.psi >= 0.0
        assert 0.0 <= check.pvalue <= 1.0 and 0.0 <= check.outside_ratio <= 1.0
        assert check.statistic >= 0.0
    if checks["x"].count:
        assert checks["x"].statistic <= 1.0


#: PSI of a window drawn from the reference itself: about (B - 1)(1/n + 1/N) for B
#: bins (9 * 0.0011 here), the 99.99th percentile of chi-square(9) times (1/n + 1/N)
#: is under 0.04.
SAME_DISTRIBUTION_PSI_BOUND = 0.04


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["normal", "lognormal", "poisson", "uniform"]))
def test_a_window_drawn_from_the_reference_has_small_psi_and_no_small_p_value(
    seed: int, law: str
) -> None:
    rng = np.random.default_rng(seed)
    values = {
        "normal": lambda: rng.normal(size=5000),
        "lognormal": lambda: rng.lognormal(0, 2, size=5000),
        "poisson": lambda: rng.poisson(4, size=5000).astype(float),
        "uniform": lambda: rng.uniform(size=5000),
    }[law]()
    labels = rng.choice(LABELS, size=5000, p=rng.dirichlet(np.ones(6)))
    pairs = zip(values.tolist(), labels.tolist(), strict=True)
    profile = build_profile({"x": v, "c": c} for v, c in pairs)
    rows = rng.choice(5000, size=1000, replace=False)
    checks = WindowChecker.from_profile(profile).check(
        {"x": values[rows], "c": labels[rows].tolist()}
    )
    for check in checks.values():
        assert 0.0 <= check.psi < SAME_DISTRIBUTION_PSI_BOUND
        assert check.pvalue > 1e-6
    assert checks["x"].outside_ratio == 0.0


def test_missing_values_and_out_of_range_values_are_counted() -> None:
    profile = build_profile({"x": float(v), "c": "ab"[v % 2]} for v in range(100))
    checker = WindowChecker(profile)
    checks = checker.check(
        {"x": [np.nan, None, -5.0, 50.0, 99.0, np.inf], "c": ["a", None, "new", "b"]}
    )
    assert checks["x"] == FeatureCheck(
        "numeric",
        count=4,
        missing_ratio=2 / 6,
        outside_ratio=0.5,
        psi=checks["x"].psi,
        statistic=checks["x"].statistic,
        pvalue=checks["x"].pvalue,
    )
    assert (checks["c"].count, checks["c"].missing_ratio, checks["c"].outside_ratio) == (
        3,
        0.25,
        pytest.approx(1 / 3),
    )


def test_an_all_missing_column_gives_nan_tests_and_an_empty_one_zero_missing() -> None:
    profile = build_profile({"x": float(v), "c": "ab"[v % 2]} for v in range(20))
    checks = WindowChecker(profile).check({"x": [np.nan] * 3, "c": []})
    assert checks["x"].count == 0 and checks["x"].missing_ratio == 1.0
    assert np.isnan(checks["x"].pvalue) and np.isnan(checks["x"].psi)
    assert checks["c"].missing_ratio == 0.0 and np.isnan(checks["c"].statistic)


def test_features_are_selected_in_the_given_order_and_results_are_frozen() -> None:
    profile = build_profile({"a": 1.0, "b": float(v), "c": "x"} for v in range(50))
    checker = WindowChecker.from_profile(profile, features=["c", "b"])
    assert checker.features == ("c", "b")
    checks = checker.check({"b": np.arange(10.0), "c": ["x"], "ignored": [1]})
    assert list(checks) == ["c", "b"]
    assert checks["c"].pvalue == 1.0  # a single category: nothing to test
    with pytest.raises(AttributeError):
        checks["b"].psi = 0.0  # type: ignore[misc]


def test_bad_settings_and_bad_columns_are_rejected_with_the_feature_named() -> None:
    profile = build_profile([{"x": 1.0, "c": "a", "gone": None}, {"x": 2.0, "c": "b"}])
    with pytest.raises(ValueError, match="ks_method must be one of"):
        WindowChecker(profile, ["x"], ks_method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="feature 'y' must be in the profile"):
        WindowChecker(profile, ["y"])
    with pytest.raises(ValueError, match="feature 'gone' must have reference values"):
        WindowChecker(profile)
    with pytest.raises(ValueError, match="epsilon must be a number in"):
        WindowChecker(profile, ["x"], epsilon=0.0)
    checker = WindowChecker(profile, ["x", "c"])
    with pytest.raises(ValueError, match=r"every checked feature, missing \['c'\]"):
        checker.check({"x": [1.0]})
    with pytest.raises(ValueError, match="feature 'x' must hold numbers"):
        checker.check({"x": ["a"], "c": ["a"]})
    with pytest.raises(ValueError, match="feature 'x' must be one-dimensional"):
        checker.check({"x": np.ones((2, 2)), "c": ["a"]})
    with pytest.raises(ValueError, match="feature 'c' labels must be str or None .* got int 1"):
        checker.check({"x": [1.0], "c": ["a", 1]})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="feature 'c' must be a sequence of labels"):
        checker.check({"x": [1.0], "c": "abc"})


@pytest.mark.parametrize("seed", range(20))
def test_the_ks_statistic_is_exactly_the_single_feature_one_with_ties_and_short_blocks(
    seed: int,
) -> None:
    # Values rounded to a coarse grid tie within the window and with the reference;
    # window lengths are not multiples of the statistic's blocks of ranks.
    rng = np.random.default_rng(seed)
    reference = np.round(rng.normal(size=int(rng.integers(20, 4000))), int(rng.integers(0, 3)))
    profile = build_profile({"x": v} for v in reference.tolist())
    window = np.round(rng.normal(rng.uniform(0, 0.5), size=int(rng.integers(1, 1500))), 1)
    window[rng.random(window.size) < 0.05] = np.nan
    check = WindowChecker.from_profile(profile).check({"x": window})["x"]
    expected = ks_test(window[~np.isnan(window)], profile.numeric("x"), method="asymp")
    assert check.statistic == expected.statistic
