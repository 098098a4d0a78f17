"""Merging profiles built separately: exact where promised, order-insensitive always."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import OTHER, CategoricalProfile, NumericProfile, build_profile

# One kind per feature, so that both sides agree on it: x numeric, c categorical.
ROW = st.fixed_dictionaries(
    {},
    optional={
        "x": st.one_of(st.none(), st.floats(-100, 100, allow_nan=False), st.integers(-5, 5)),
        "c": st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e"])),
    },
)
ROWS = st.lists(ROW, max_size=30)


@settings(max_examples=80, deadline=None)
@given(left=ROWS, right=ROWS, max_sample=st.integers(1, 40), top_k=st.integers(1, 6))
def test_merge_does_not_depend_on_the_order_of_the_operands(
    left: list[dict], right: list[dict], max_sample: int, top_k: int
) -> None:
    a = build_profile(left, n_bins=4, max_sample=max_sample, top_k=top_k)
    b = build_profile(right, n_bins=4, max_sample=max_sample, top_k=top_k)
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).profile_id == b.merge(a).profile_id


@settings(max_examples=80, deadline=None)
@given(left=ROWS, right=ROWS, max_sample=st.integers(1, 40), top_k=st.integers(1, 6))
def test_merged_counts_missing_and_ranges_equal_those_of_the_union_of_rows(
    left: list[dict], right: list[dict], max_sample: int, top_k: int
) -> None:
    merged = build_profile(left, n_bins=4, max_sample=max_sample, top_k=top_k).merge(
        build_profile(right, n_bins=4, max_sample=max_sample, top_k=top_k)
    )
    union = build_profile(left + right, n_bins=4, max_sample=max_sample, top_k=top_k)
    assert merged.n_rows == union.n_rows == len(left) + len(right)
    assert set(merged.features) == set(union.features)
    for name, feature in union.features.items():
        twin = merged.features[name]
        assert twin.kind == feature.kind
        assert (twin.count, twin.missing) == (feature.count, feature.missing)
        if isinstance(feature, NumericProfile):
            assert isinstance(twin, NumericProfile)
            assert (twin.minimum, twin.maximum) == (feature.minimum, feature.maximum)
            assert twin.sample.size == min(feature.count, max_sample)
            assert twin.bin_counts.sum() == feature.count


@settings(max_examples=80, deadline=None)
@given(left=ROWS, right=ROWS)
def test_merge_within_max_sample_and_top_k_equals_building_from_the_union(
    left: list[dict], right: list[dict]
) -> None:
    a = build_profile(left, n_bins=5, max_sample=100, top_k=10)
    b = build_profile(right, n_bins=5, max_sample=100, top_k=10)
    assert a.merge(b) == build_profile(left + right, n_bins=5, max_sample=100, top_k=10)


def test_merge_past_max_sample_samples_each_side_in_proportion_to_its_count() -> None:
    rng = np.random.default_rng(2)
    low, high = rng.normal(0, 1, 3000), rng.normal(50, 1, 1000)
    big = build_profile([{"x": v} for v in low.tolist()], max_sample=200)
    small = build_profile([{"x": v} for v in high.tolist()], max_sample=200)
    merged = big.merge(small).numeric("x")
    assert isinstance(merged, NumericProfile)
    assert merged.sample.size == 200
    assert int((merged.sample > 25).sum()) == 50
    assert merged.count == 4000 and merged.bin_counts.sum() == 4000
    # Re-estimated bin counts stay close to the exact counts of all 4000 values.
    exact = np.bincount(
        np.digitize(np.concatenate((low, high)), merged.cuts, right=True),
        minlength=merged.cuts.size + 1,
    )
    assert np.abs(merged.bin_counts - exact).max() <= 240


def test_merge_past_top_k_keeps_what_each_side_folded_in_other() -> None:
    a = build_profile([{"c": v} for v in "aaabbc"], top_k=2)
    b = build_profile([{"c": v} for v in "cccd"], top_k=2)
    merged = a.merge(b).categorical("c")
    assert merged == CategoricalProfile(10, 0, {"c": 3, "a": 3, OTHER: 4})


def test_a_feature_missing_from_one_profile_counts_as_missing_in_its_rows() -> None:
    merged = build_profile([{"x": 1.0}] * 3).merge(build_profile([{"c": "a"}] * 2))
    assert (merged.numeric("x").count, merged.numeric("x").missing) == (3, 2)
    assert (merged.categorical("c").count, merged.categorical("c").missing) == (2, 3)


def test_profiles_with_different_settings_do_not_merge() -> None:
    with pytest.raises(ValueError, match="profiles must share n_bins to merge, got 10 and 5"):
        build_profile([{"x": 1.0}]).merge(build_profile([{"x": 1.0}], n_bins=5))


def test_a_feature_numeric_on_one_side_and_categorical_on_the_other_does_not_merge() -> None:
    with pytest.raises(ValueError, match="feature 'x' must have one kind in both profiles"):
        build_profile([{"x": 1.0}]).merge(build_profile([{"x": "a"}]))
