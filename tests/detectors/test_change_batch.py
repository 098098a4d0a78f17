"""``update_many`` against a loop of ``update``: the same detections and the same state.

ADWIN's batch path rebuilds the buckets with numpy and screens the clock ticks for cuts
with a loosened test, replaying only the ticks that pass; these tests hold it to the
loop bit for bit (``to_state()`` compares every float) on seeded streams of several
kinds and lengths, for several settings, with batches split anywhere and snapshots
taken in between.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detectors.change import ADWIN, ChangeDetector, _adwin_batch

SETTINGS: list[dict[str, Any]] = [
    {},
    {"delta": 0.05, "clock": 1},
    {"max_buckets": 2, "min_window_length": 1, "grace_period": 0},
    {"max_buckets": 3, "clock": 3, "min_window_length": 12},
    {"clock": 7, "grace_period": 300, "delta": 0.2},
]


def stream(seed: int, length: int) -> np.ndarray:
    """Errors with a rate change, shifting normals, tied integers or a large offset."""
    rng = np.random.default_rng(seed)
    after = np.arange(length) >= length // 2
    kind = seed % 5
    if kind == 0:
        return (rng.random(length) < np.where(after, 0.3, 0.1)).astype(np.float64)
    if kind == 1:
        levels = np.repeat(rng.uniform(-1.0, 1.0, 6), length // 6 + 1)[:length]
        return rng.normal(levels, rng.uniform(0.1, 2.0))
    if kind == 2:
        return rng.integers(0, 3, length).astype(np.float64) + after
    if kind == 3:  # a large offset: the sums lose digits the screen must allow for
        return 1e6 + rng.normal(np.where(after, 0.2, 0.0), 1e-3)
    return rng.normal(0.0, 1e-9, length) * (1.0 + after)


def loop(detector: ChangeDetector, values: np.ndarray) -> list[int]:
    found = []
    for i, x in enumerate(values.tolist()):
        detector.update(x)
        if detector.drift_detected:
            found.append(i)
    return found


@pytest.mark.parametrize("params", SETTINGS)
def test_adwin_update_many_equals_the_loop_on_seeded_streams(params: dict[str, Any]) -> None:
    detections = 0
    for seed in range(15):
        values = stream(seed, 1_000 + 500 * seed)
        looped = ADWIN(**params)
        expected = loop(looped, values)
        batched = ADWIN(**params)
        assert batched.update_many(values).tolist() == expected, f"stream {seed}"
        assert batched.to_state() == looped.to_state(), f"stream {seed}"
        detections += len(expected)
    assert detections >= 10, "the streams should make ADWIN fire"


@pytest.mark.parametrize("seed", range(6))
def test_adwin_batches_split_anywhere_through_snapshots_equal_the_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = stream(seed, 12_000)
    params = SETTINGS[seed % len(SETTINGS)]
    looped = ADWIN(**params)
    expected = loop(looped, values)
    cuts = np.sort(rng.integers(0, values.size, 5))
    detector = ADWIN(**params)
    found: list[int] = []
    for start, stop in zip([0, *cuts], [*cuts, values.size], strict=True):
        found += (start + detector.update_many(values[start:stop])).tolist()
        detector = ADWIN.from_state(detector.to_state())
    assert found == expected
    assert detector.to_state() == looped.to_state()


def test_adwin_long_stream_crosses_many_chunks_and_matches_the_loop() -> None:
    values = np.concatenate([stream(0, 60_000), stream(1, 40_000)])
    looped = ADWIN()
    expected = loop(looped, values)
    batched = ADWIN()
    assert batched.update_many(values).tolist() == expected
    assert batched.to_state() == looped.to_state()
    assert values.size > 4 * _adwin_batch.FIRST_CHUNK


def test_adwin_batch_right_after_a_detection_starts_afresh_like_the_loop() -> None:
    values = stream(0, 6_000)
    first = loop(ADWIN(), values)[0]
    looped, batched = ADWIN(), ADWIN()
    loop(looped, values[: first + 1])
    loop(batched, values[: first + 1])
    assert batched.drift_detected
    batched = ADWIN.from_state(batched.to_state())
    rest = loop(looped, values[first + 1 :])
    assert batched.update_many(values[first + 1 :]).tolist() == rest
    assert batched.to_state() == looped.to_state()


def test_adwin_constant_stream_never_fires_in_a_batch() -> None:
    detector = ADWIN(clock=1)
    assert detector.update_many(np.full(5_000, 3.25)).tolist() == []
    looped = ADWIN(clock=1)
    loop(looped, np.full(5_000, 3.25))
    assert detector.to_state() == looped.to_state()


@pytest.mark.parametrize("params", SETTINGS[:3])
def test_adwin_batch_ending_on_a_detection_leaves_the_loops_trimmed_window(
    params: dict[str, Any],
) -> None:
    values = stream(1, 8_000)
    looped = ADWIN(**params)
    expected = loop(looped, values)
    assert expected, "the stream should make ADWIN fire"
    first = expected[0]
    reference = ADWIN(**params)
    loop(reference, values[: first + 1])
    batched = ADWIN(**params)
    assert batched.update_many(values[: first + 1]).tolist() == [first]
    assert batched.to_state() == reference.to_state()
    assert batched.width == reference.width


@pytest.mark.parametrize(
    ("max_buckets", "clock", "split"),
    [(5, 32, 8), (5, 32, 5), (2, 1, 3), (3, 3, 4), (1, 7, 5), (4, 30, 7), (5, 1000, 12)],
)
def test_adwin_steady_screen_table_repeats_the_boundaries_of_every_tick(
    max_buckets: int, clock: int, split: int
) -> None:
    """From 2 M 2**split values on, the newer-part lengths of the rows tested every tick
    depend on the tick's phase alone: the table read once matches the boundaries worked
    out tick by tick, from any phase."""
    lowest, block = 1, 50
    newer, w, largest, period = _adwin_batch._steady_table(
        max_buckets, clock, lowest, split, 4.25, block
    )
    assert newer.shape[1] >= block + period
    assert largest == newer.max()
    start = -(-(max_buckets << (split + 1)) // clock) * clock
    ticks = np.arange(start, start + clock * (3 * period + block), clock, dtype=np.int64)
    counts = _adwin_batch._counts(ticks, max_buckets, lowest, split)
    positions = _adwin_batch._positions(
        _adwin_batch._boundaries(counts, lowest, split, max_buckets), slice(None)
    )
    expected = ticks - positions
    for low in range(0, ticks.size - block, 7):
        phase = int(ticks[low]) // clock % period
        assert np.array_equal(newer[:, phase : phase + block], expected[:, low : low + block])
    b = newer - 4.25  # b = n1 - l + 3/4, and w = sqrt(b), infinite where b <= 0
    assert np.array_equal(w, np.where(b > 0.0, np.sqrt(np.maximum(b, 0.0)), np.inf))
