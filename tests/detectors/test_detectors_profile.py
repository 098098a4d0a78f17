"""Reference profiles: how rows become summaries, state round trips and the content hash."""

from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from detectors import (
    OTHER,
    CategoricalProfile,
    FeatureValue,
    NumericProfile,
    Profile,
    ProfileBuilder,
    build_profile,
    ks_test,
    psi,
    to_category,
)

FEATURE_VALUES = st.one_of(
    st.none(),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-1000, 1000),
    st.sampled_from(["a", "b", "c", "d"]),
    st.booleans(),
)
ROWS = st.lists(
    st.dictionaries(st.sampled_from(["x", "y", "z"]), FEATURE_VALUES, max_size=3),
    max_size=40,
)


def numeric_rows(values: list[float], name: str = "x") -> list[dict[str, float]]:
    return [{name: v} for v in values]


def test_numbers_make_a_numeric_feature_with_quantile_cuts_and_counts() -> None:
    values = np.random.default_rng(0).normal(size=1000)
    feature = build_profile(numeric_rows(values.tolist())).numeric("x")
    assert isinstance(feature, NumericProfile)
    expected_cuts = np.quantile(values, np.arange(1, 10) / 10)
    np.testing.assert_array_equal(feature.cuts, expected_cuts)
    bins = np.digitize(values, expected_cuts, right=True)
    np.testing.assert_array_equal(feature.bin_counts, np.bincount(bins, minlength=10))
    assert (feature.count, feature.missing) == (1000, 0)
    assert (feature.minimum, feature.maximum) == (values.min(), values.max())
    np.testing.assert_array_equal(feature.sample, np.sort(values))
    assert feature.sample_is_exact


def test_strings_and_bools_make_a_categorical_feature() -> None:
    rows: list[dict[str, FeatureValue]] = [
        {"plan": "pro"},
        {"plan": "free"},
        {"plan": "pro"},
        {"flag": True},
        {"flag": False},
    ]
    profile = build_profile(rows)
    assert profile.features["plan"] == CategoricalProfile(3, 2, {"pro": 2, "free": 1})
    assert dict(profile.categorical("flag").counts) == {"false": 1, "true": 1}


def test_mixed_numbers_and_strings_make_a_categorical_feature_with_numbers_as_labels() -> None:
    rows: list[dict[str, FeatureValue]] = [
        {"code": 1},
        {"code": 1.0},
        {"code": "1"},
        {"code": 2.5},
        {"code": "x"},
    ]
    feature = build_profile(rows).features["code"]
    assert isinstance(feature, CategoricalProfile)
    assert dict(feature.counts) == {"1": 3, "2.5": 1, "x": 1}


def test_none_nan_and_absent_keys_all_count_as_missing() -> None:
    rows: list[dict[str, FeatureValue]] = [{"x": 1.0}, {"x": None}, {"x": math.nan}, {}, {"x": 2.0}]
    feature = build_profile(rows).numeric("x")
    assert (feature.count, feature.missing, feature.missing_ratio) == (2, 3, 0.6)


def test_an_all_missing_feature_is_an_empty_numeric_profile() -> None:
    feature = build_profile([{"x": None}] * 4).numeric("x")
    assert feature == NumericProfile.empty(4)
    assert feature.missing_ratio == 1.0
    with pytest.raises(ValueError, match="at least one value, got count 0"):
        ks_test([1.0], feature)


def test_a_constant_feature_has_one_cut_and_two_open_bins() -> None:
    feature = build_profile(numeric_rows([3.0] * 50)).numeric("x")
    assert feature.cuts.tolist() == [3.0]
    assert feature.bin_counts.tolist() == [50, 0]
    assert psi(np.full(20, 3.0), feature).statistic == 0.0
    assert psi(np.full(20, 4.0), feature).statistic > 1.0


def test_categories_beyond_top_k_are_folded_into_other() -> None:
    rows = [{"c": label} for label, n in [("a", 5), ("b", 4), ("c", 3), ("d", 2)] for _ in range(n)]
    feature = build_profile(rows, top_k=2).categorical("c")
    assert dict(feature.counts) == {"a": 5, "b": 4, OTHER: 5}


def test_a_large_feature_keeps_a_seeded_subsample_of_max_sample_values() -> None:
    values = np.random.default_rng(1).normal(size=5000).tolist()
    first = build_profile(numeric_rows(values), max_sample=300, seed=4).numeric("x")
    again = build_profile(numeric_rows(values[::-1]), max_sample=300, seed=4).numeric("x")
    other_seed = build_profile(numeric_rows(values), max_sample=300, seed=5).numeric("x")
    assert first.sample.size == 300 and not first.sample_is_exact
    assert np.all(np.diff(first.sample) >= 0)
    assert np.isin(first.sample, values).all()
    np.testing.assert_array_equal(first.sample, again.sample)
    assert not np.array_equal(first.sample, other_seed.sample)
    assert first.bin_counts.sum() == 5000


def test_to_category_labels_numbers_bools_and_strings_one_way() -> None:
    assert [to_category(v) for v in (2, 2.0, -0.0, 1e20, 0.1, True, "s")] == [
        "2",
        "2",
        "0",
        "1e+20",
        "0.1",
        "true",
        "s",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_bins": 1}, "n_bins must be an integer >= 2, got 1"),
        ({"n_bins": 2.5}, "n_bins must be an integer >= 2, got 2.5"),
        ({"max_sample": 0}, "max_sample must be an integer >= 1, got 0"),
        ({"top_k": 0}, "top_k must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"n_bins": True}, "n_bins must be an integer >= 2, got True"),
    ],
)
def test_invalid_settings_are_rejected_naming_the_parameter(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProfileBuilder(**kwargs)


def test_infinite_values_are_rejected_and_leave_the_builder_unchanged() -> None:
    builder = ProfileBuilder()
    builder.update({"x": 1.0, "y": "a"})
    before = builder.to_state()
    with pytest.raises(ValueError, match="feature 'x' must be finite or None, got inf"):
        builder.update({"y": "b", "x": math.inf})
    with pytest.raises(TypeError, match="feature 'x' must be a number, string, bool or None"):
        builder.update({"x": [1.0]})  # type: ignore[dict-item]
    assert builder.to_state() == before
    assert builder.n_rows == 1


def test_an_unknown_state_version_is_rejected() -> None:
    state = build_profile([{"x": 1.0}]).to_state()
    state["version"] = 2
    with pytest.raises(ValueError, match="profile state version must be 1, got 2"):
        Profile.from_state(state)


def test_an_inconsistent_state_is_rejected() -> None:
    state = build_profile(numeric_rows([1.0, 2.0, 3.0])).to_state()
    state["features"]["x"]["bin_counts"][0] += 1
    with pytest.raises(ValueError, match="bin_counts must be non-negative and sum to count"):
        Profile.from_state(state)


def test_the_profile_id_is_a_known_16_digit_hash_of_the_state() -> None:
    profile = build_profile([{"x": 1.0, "c": "a"}, {"x": 2.0, "c": "b"}], n_bins=2)
    assert len(profile.profile_id) == 16
    reordered = build_profile([{"c": "a", "x": 1.0}, {"x": 2.0, "c": "b"}], n_bins=2)
    assert reordered.profile_id == profile.profile_id
    assert profile.profile_id != build_profile([{"x": 1.0, "c": "a"}], n_bins=2).profile_id


@settings(max_examples=80, deadline=None)
@given(rows=ROWS, n_bins=st.integers(2, 12), top_k=st.integers(1, 5))
def test_a_state_round_trip_through_json_gives_an_equal_profile(
    rows: list[dict], n_bins: int, top_k: int
) -> None:
    profile = build_profile(rows, n_bins=n_bins, top_k=top_k, max_sample=25)
    text = json.dumps(profile.to_state(), allow_nan=False)
    restored = Profile.from_state(json.loads(text))
    assert restored == profile
    assert restored.profile_id == profile.profile_id
    assert restored.to_state()["version"] == 1
    for name, feature in profile.features.items():
        assert feature.count + feature.missing == len(rows)
        twin = restored.features[name]
        if isinstance(feature, NumericProfile) and feature.count:
            window = np.linspace(-10.0, 10.0, 7)
            assert ks_test(window, twin) == ks_test(window, feature)
            assert psi(window, twin) == psi(window, feature)


@settings(max_examples=60, deadline=None)
@given(rows=ROWS.filter(bool), extra=st.floats(-1e3, 1e3, allow_nan=False))
def test_the_profile_id_is_stable_and_changes_when_the_data_change(
    rows: list[dict], extra: float
) -> None:
    profile = build_profile(rows)
    assert build_profile(rows).profile_id == profile.profile_id
    assert build_profile([*rows, {"x": extra}]).profile_id != profile.profile_id
    assert build_profile(rows, n_bins=11).profile_id != profile.profile_id


@settings(max_examples=40, deadline=None)
@given(rows=ROWS)
def test_a_builder_restored_from_its_state_builds_the_same_profile(rows: list[dict]) -> None:
    builder = ProfileBuilder(n_bins=4, max_sample=10)
    for row in rows:
        builder.update(row)
    restored = ProfileBuilder.from_state(json.loads(json.dumps(builder.to_state())))
    assert restored.build() == builder.build()
    builder.reset()
    assert builder.to_state() == ProfileBuilder(n_bins=4, max_sample=10).to_state()


def test_a_builder_keeps_taking_rows_after_building_a_profile() -> None:
    builder = ProfileBuilder(n_bins=2)
    builder.update({"x": 1.0})
    first = builder.build()
    builder.update({"x": 3.0})
    assert first.numeric("x").count == 1
    assert builder.build().numeric("x").sample.tolist() == [1.0, 3.0]


@st.composite
def column_rows(draw: st.DrawFn) -> list[dict]:
    """Rows whose features mostly keep to one kind (numbers or labels), with missing
    values (None, NaN, absent keys) and, now and then, a value of the other kind or
    infinity."""
    kinds = {name: draw(st.sampled_from(["number", "label"])) for name in ("x", "y", "z", "w")}
    numbers = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-1000, 1000))
    labels = st.one_of(st.sampled_from(["a", "b", "c"]), st.booleans())
    missing = st.sampled_from([math.nan, None])
    odd = st.sampled_from([math.inf, "q", 2.0, True])
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        row: dict = {}
        for name in draw(st.permutations(list(kinds))):
            roll = draw(st.integers(0, 99))
            if roll < 10:
                continue  # absent
            if roll < 20:
                row[name] = draw(missing)
            elif roll < 21:
                row[name] = draw(odd)
            else:
                row[name] = draw(numbers if kinds[name] == "number" else labels)
        rows.append(row)
    return rows


@settings(max_examples=150, deadline=None)
@given(rows=column_rows(), cuts=st.lists(st.integers(0, 30), max_size=4))
def test_rows_in_bulk_give_the_state_one_update_per_row_gives(
    rows: list[dict], cuts: list[int]
) -> None:
    def one(builder: ProfileBuilder, row: dict) -> None:
        with contextlib.suppress(ValueError):  # infinity: the row is turned down
            builder.update(row)

    single, bulk = ProfileBuilder(n_bins=4), ProfileBuilder(n_bins=4)
    for row in rows:
        one(single, row)
    bounds = [0, *sorted(cuts), len(rows)]
    for start, stop in zip(bounds, bounds[1:], strict=False):
        chunk = rows[start:stop]
        before = json.dumps(bulk.to_state())
        taken = bulk.update_many(chunk)
        event(f"taken in bulk: {taken}")
        if not taken:
            assert json.dumps(bulk.to_state()) == before  # nothing taken
            for row in chunk:
                one(bulk, row)
    # Key order too: the same dicts, made in the same order.
    assert json.dumps(bulk.to_state()) == json.dumps(single.to_state())
    assert bulk.build() == single.build()


def test_clean_rows_go_in_bulk_and_others_are_declined_untouched() -> None:
    builder = ProfileBuilder()
    clean = [{"x": 1.0, "c": "a", "n": None}, {"c": True, "x": math.nan, "i": 3}]
    assert builder.update_many(clean)
    assert builder.n_rows == 2
    state = json.dumps(builder.to_state())
    for rows in (
        [{"x": math.inf}],
        [{"x": 1.0}, {"x": "a"}],  # numbers and labels in one feature
        [{"x": [1.0]}],
        [{1: 1.0}],
    ):
        assert not builder.update_many(rows)  # type: ignore[arg-type]
        assert json.dumps(builder.to_state()) == state
    assert builder.build().features["c"].counts == {"a": 1, "true": 1}
