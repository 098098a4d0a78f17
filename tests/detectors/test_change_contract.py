"""The change-detector contract, checked over every detector.

Parameters validated at once with messages naming the rule; ``reset()`` equal to a fresh
instance; a JSON round trip of the snapshot mid-stream continuing with identical
detections; ``update_many`` equal to a loop of ``update``; inputs left unchanged;
the same seed giving the same detections; documented examples that print what they say.
"""

from __future__ import annotations

import doctest
import importlib
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.change import (
    ADWIN,
    CUSUM,
    DDM,
    EDDM,
    KSWIN,
    STATE_VERSION,
    ChangeDetector,
    PageHinkley,
)

FACTORIES: dict[str, Callable[[int], ChangeDetector]] = {
    "adwin": lambda seed: ADWIN(),
    "adwin_every_update": lambda seed: ADWIN(delta=0.05, clock=1, max_buckets=2),
    "page_hinkley": lambda seed: PageHinkley(),
    "page_hinkley_up": lambda seed: PageHinkley(threshold=10.0, mode="up"),
    "ddm": lambda seed: DDM(),
    "eddm": lambda seed: EDDM(),
    "kswin": lambda seed: KSWIN(seed=seed),
    "cusum": lambda seed: CUSUM(),
    "cusum_known": lambda seed: CUSUM(target=0.0, sigma=1.0, h=4.0, mode="down"),
}
DETECTORS = pytest.mark.parametrize("name", list(FACTORIES))


def stream_for(name: str, seed: int, length: int = 1500) -> np.ndarray:
    """Values with several changes: 0/1 errors for DDM and EDDM, numbers otherwise."""
    rng = np.random.default_rng(seed)
    levels = np.repeat(rng.uniform(-2.0, 2.0, 5), length // 5 + 1)[:length]
    if name in ("ddm", "eddm"):
        return (rng.random(length) < 0.1 + 0.1 * np.abs(levels)).astype(np.float64)
    return rng.normal(levels, 1.0)


def loop(detector: ChangeDetector, values: np.ndarray) -> list[int]:
    found = []
    for i, x in enumerate(values.tolist()):
        detector.update(x)
        if detector.drift_detected:
            found.append(i)
    return found


def through_json(detector: ChangeDetector) -> ChangeDetector:
    text = json.dumps(detector.to_state(), allow_nan=False)
    return ChangeDetector.from_state(json.loads(text))


def assert_json_safe(value: Any) -> None:
    if isinstance(value, dict):
        assert all(isinstance(key, str) for key in value)
        for item in value.values():
            assert_json_safe(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_safe(item)
    else:
        assert value is None or type(value) in (str, int, float, bool)
        assert not (isinstance(value, float) and not math.isfinite(value))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ADWIN(delta=1.5), "delta must be in (0, 1), got 1.5"),
        (lambda: ADWIN(clock=0), "clock must be an integer >= 1, got 0"),
        (
            lambda: ADWIN(max_buckets=2.5),  # type: ignore[arg-type]
            "max_buckets must be an integer >= 1, got 2.5",
        ),
        (lambda: ADWIN(grace_period=True), "grace_period must be an integer >= 0, got True"),
        (lambda: PageHinkley(threshold=0), "threshold must be > 0, got 0"),
        (lambda: PageHinkley(alpha=1.01), "alpha must be in (0, 1], got 1.01"),
        (lambda: PageHinkley(delta=-0.1), "delta must be >= 0, got -0.1"),
        (lambda: PageHinkley(mode="sideways"), "mode must be one of 'up', 'down', 'both', got"),
        (lambda: DDM(drift_threshold=1.0), "drift_threshold must be >= 2, got 1.0"),
        (lambda: DDM(warm_start=-1), "warm_start must be an integer >= 0, got -1"),
        (lambda: EDDM(beta=0.99), "beta must be in (0, 0.95], got 0.99"),
        (lambda: EDDM(alpha=float("nan")), "alpha must be in (0, 1], got nan"),
        (lambda: KSWIN(alpha=0), "alpha must be in (0, 1), got 0"),
        (lambda: KSWIN(stat_size=60), "stat_size must be at most window_size // 2 = 50, got 60"),
        (lambda: KSWIN(seed=-3), "seed must be an integer >= 0, got -3"),
        (lambda: CUSUM(sigma=0.0), "sigma must be > 0, got 0.0"),
        (lambda: CUSUM(target=float("inf")), "target must be finite, got inf"),
        (lambda: CUSUM(min_instances=1), "min_instances must be an integer >= 2, got 1"),
        (
            lambda: CUSUM(k="0.5"),  # type: ignore[arg-type]
            "k must be >= 0, got '0.5'",
        ),
    ],
)
def test_a_bad_parameter_is_refused_with_its_name_rule_and_value(
    make: Callable[[], ChangeDetector], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        make()
    assert str(raised.value).startswith(message)


@DETECTORS
def test_the_defaults_are_stored_under_their_argument_names(name: str) -> None:
    detector = FACTORIES[name](0)
    params = detector.to_state()["params"]
    assert params == {key: getattr(detector, key) for key in params}
    assert type(detector)(**params).to_state() == FACTORIES[name](0).to_state()


@DETECTORS
def test_reset_makes_a_detector_equal_to_a_fresh_one(name: str) -> None:
    detector = FACTORIES[name](1)
    detector.update_many(stream_for(name, 1))
    assert detector.to_state() != FACTORIES[name](1).to_state()
    detector.reset()
    assert detector.to_state() == FACTORIES[name](1).to_state()
    assert not detector.drift_detected


@DETECTORS
@pytest.mark.parametrize("cut", [1, 317, 750])
def test_a_snapshot_through_json_mid_stream_continues_with_identical_detections(
    name: str, cut: int
) -> None:
    values = stream_for(name, cut)
    original = FACTORIES[name](cut)
    loop(original, values[:cut])
    restored = through_json(original)
    assert type(restored) is type(original)
    assert loop(restored, values[cut:]) == loop(original, values[cut:])
    assert restored.to_state() == original.to_state()


@DETECTORS
def test_a_snapshot_right_after_a_detection_continues_identically(name: str) -> None:
    seed, found = next(
        (seed, found)
        for seed in range(2, 40)
        if (found := loop(FACTORIES[name](seed), stream_for(name, seed)))
    )
    values = stream_for(name, seed)
    original = FACTORIES[name](seed)
    loop(original, values[: found[0] + 1])
    restored = through_json(original)
    assert restored.drift_detected
    assert loop(restored, values[found[0] + 1 :]) == loop(original, values[found[0] + 1 :])


@DETECTORS
def test_snapshots_are_json_safe_and_versioned(name: str) -> None:
    detector = FACTORIES[name](3)
    for values in np.array_split(stream_for(name, 3), 4):
        detector.update_many(values)
        state = detector.to_state()
        assert_json_safe(state)
        assert state["type"] == type(detector).__name__
        assert state["version"] == STATE_VERSION == 1


@DETECTORS
def test_a_snapshot_of_another_type_or_version_is_refused(name: str) -> None:
    detector = FACTORIES[name](0)
    state = detector.to_state()
    other = ADWIN if not isinstance(detector, ADWIN) else DDM
    with pytest.raises(ValueError, match="state type must be"):
        other.from_state(state)
    with pytest.raises(ValueError, match="state version must be 1, got 2"):
        type(detector).from_state({**state, "version": 2})
    with pytest.raises(ValueError, match="malformed"):
        type(detector).from_state({**state, "state": {}})


@DETECTORS
def test_update_many_returns_the_indices_a_loop_of_update_finds(name: str) -> None:
    for seed in range(4):
        values = stream_for(name, seed)
        looped = FACTORIES[name](seed)
        expected = loop(looped, values)
        batched = FACTORIES[name](seed)
        found = batched.update_many(values)
        assert found.dtype == np.intp
        assert found.tolist() == expected
        assert batched.to_state() == looped.to_state()


@DETECTORS
@settings(max_examples=25)
@given(data=st.data())
def test_any_stream_split_anywhere_gives_the_same_detections_and_state(
    name: str, data: st.DataObject
) -> None:
    binary = name in ("ddm", "eddm")
    element = st.sampled_from([0.0, 1.0]) if binary else st.floats(-1e6, 1e6)
    values = np.array(data.draw(st.lists(element, max_size=400)), dtype=np.float64)
    cut = data.draw(st.integers(0, len(values)))
    looped = FACTORIES[name](0)
    expected = loop(looped, values)
    first = FACTORIES[name](0)
    found = first.update_many(values[:cut]).tolist()
    second = through_json(first)
    found += (cut + second.update_many(values[cut:])).tolist()
    assert found == expected
    assert second.to_state() == looped.to_state()


@DETECTORS
def test_update_many_in_uneven_batches_finds_the_same_changes(name: str) -> None:
    values = stream_for(name, 5)
    expected = loop(FACTORIES[name](5), values)
    detector = FACTORIES[name](5)
    found: list[int] = []
    start = 0
    for size in [0, 1, 2, 63, 64, 65, 200, 1] * 5:
        found += (start + detector.update_many(values[start : start + size])).tolist()
        start += size
    found += (start + detector.update_many(values[start:])).tolist()
    assert found == expected


@DETECTORS
def test_inputs_are_left_unchanged(name: str) -> None:
    values = stream_for(name, 6)
    copy = values.copy()
    as_list = values.tolist()
    FACTORIES[name](6).update_many(values)
    FACTORIES[name](6).update_many(as_list)
    FACTORIES[name](6).update_many(values[::-2])
    assert np.array_equal(values, copy)
    assert as_list == copy.tolist()


@DETECTORS
def test_the_same_seed_gives_the_same_detections(name: str) -> None:
    values = stream_for(name, 7)
    first, second = FACTORIES[name](7), FACTORIES[name](7)
    assert first.update_many(values).tolist() == second.update_many(values).tolist()
    assert first.to_state() == second.to_state()


@DETECTORS
def test_drift_detected_is_read_only_and_true_only_on_the_detecting_update(name: str) -> None:
    detector = FACTORIES[name](8)
    with pytest.raises(AttributeError):
        detector.drift_detected = True  # type: ignore[misc]
    flags = []
    for x in stream_for(name, 8).tolist():
        detector.update(x)
        flags.append(detector.drift_detected)
    assert any(flags)
    assert not any(a and b for a, b in zip(flags, flags[1:], strict=False))


@DETECTORS
def test_a_bad_value_is_refused_and_a_bad_batch_changes_nothing(name: str) -> None:
    detector = FACTORIES[name](9)
    detector.update_many(stream_for(name, 9)[:200])
    before = detector.to_state()
    with pytest.raises(ValueError, match="x must be finite, got nan"):
        detector.update(float("nan"))
    with pytest.raises(ValueError, match=r"values must be .*, got inf at index 2"):
        detector.update_many([0.0, 1.0, float("inf"), 0.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        detector.update_many([[0.0, 1.0]])
    assert detector.to_state() == before


@pytest.mark.parametrize("detector", [DDM(), EDDM()])
def test_binary_detectors_refuse_values_other_than_0_and_1(detector: ChangeDetector) -> None:
    with pytest.raises(ValueError, match="x must be 0 or 1, got 0.5"):
        detector.update(0.5)
    with pytest.raises(ValueError, match="values must be 0 or 1, got 2.0 at index 1"):
        detector.update_many([1, 2])
    detector.update(True)
    detector.update_many(np.array([False, True]))


def test_repr_shows_the_hyper_parameters() -> None:
    assert repr(KSWIN(seed=3)) == "KSWIN(alpha=0.005, window_size=100, stat_size=30, seed=3)"


@pytest.mark.parametrize(
    "module", ["adwin", "page_hinkley", "ddm", "eddm", "kswin", "cusum", "base"]
)
def test_the_docstring_examples_print_what_they_say(module: str) -> None:
    imported = importlib.import_module(f"detectors.change.{module}")
    failed, attempted = doctest.testmod(imported, optionflags=doctest.ELLIPSIS)
    assert failed == 0
    assert attempted > 0 or module == "base"
