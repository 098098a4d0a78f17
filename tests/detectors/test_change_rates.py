"""False-alarm rates and detection delays of the change detectors with their defaults.

False alarms: seeded stationary streams of 2,000 values, N(0, 1) for the real-valued
detectors and Bernoulli(0.2) errors for DDM and EDDM (200 streams; 100 for KSWIN,
the slowest). Delay: streams whose mean moves at t = 1,000 from 0 to 2 (error rate
0.2 to 0.5); the delay is the first detection at or after the change, minus 1,000, and a
stream without one before the end counts as missed. Measured:

============  ===============  ==============  ============  ==========  ======
detector      streams with a   false alarms    median delay  mean delay  missed
              false alarm      per 1000 values
============  ===============  ==============  ============  ==========  ======
ADWIN         0.000            0.000           23            23.0        0
PageHinkley   0.720            0.477           18            17.6        1/200
DDM           0.255            0.185           91.5          123.4       0
EDDM          0.970            3.558           30            37.8        0
KSWIN         0.910            1.255           15            39.2        0
CUSUM         0.405            0.265           5             5.3         4/200
============  ===============  ==============  ============  ==========  ======

ADWIN tests for a cut every 32 values, hence its fixed delay of 23 here. River's
Page–Hinkley defaults (threshold 50) are not scale-free: on unit-variance data most
streams of 2,000 values see a false alarm. EDDM and KSWIN (alpha 0.005 per test, one
test per value) are sensitive by design. CUSUM misses a change when a false alarm just
before it puts the change inside the warm-up. The bounds below leave room for noise
but fail on a regression of either figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

from detectors.change import ADWIN, CUSUM, DDM, EDDM, KSWIN, ChangeDetector, PageHinkley

LENGTH, CHANGE = 2000, 1000


class Bounds(NamedTuple):
    make: Callable[[int], ChangeDetector]
    streams: int
    streams_with_false_alarm: float
    false_alarms_per_1000: float
    median_delay: float
    mean_delay: float
    missed: float


BOUNDS = {
    "ADWIN": Bounds(lambda seed: ADWIN(), 200, 0.02, 0.02, 40, 40, 0.01),
    "PageHinkley": Bounds(lambda seed: PageHinkley(), 200, 0.85, 0.65, 25, 25, 0.02),
    "DDM": Bounds(lambda seed: DDM(), 200, 0.40, 0.30, 130, 170, 0.02),
    "EDDM": Bounds(lambda seed: EDDM(), 200, 1.00, 4.50, 45, 55, 0.02),
    "KSWIN": Bounds(lambda seed: KSWIN(seed=seed), 100, 0.97, 1.80, 22, 70, 0.02),
    "CUSUM": Bounds(lambda seed: CUSUM(), 200, 0.55, 0.40, 8, 10, 0.05),
}
NAMES = pytest.mark.parametrize("name", list(BOUNDS))


def stream(name: str, seed: int, shifted: bool) -> np.ndarray:
    rng = np.random.default_rng(seed + (100_000 if shifted else 0))
    after = (np.arange(LENGTH) >= CHANGE) & shifted
    if name in ("DDM", "EDDM"):
        return (rng.random(LENGTH) < np.where(after, 0.5, 0.2)).astype(np.float64)
    return rng.normal(np.where(after, 2.0, 0.0), 1.0)


@NAMES
def test_the_false_alarm_rate_with_defaults_stays_within_its_bound(name: str) -> None:
    bounds = BOUNDS[name]
    counts = [
        len(bounds.make(seed).update_many(stream(name, seed, shifted=False)))
        for seed in range(bounds.streams)
    ]
    streams_with_alarm = np.mean([count > 0 for count in counts])
    per_1000 = 1000 * sum(counts) / (bounds.streams * LENGTH)
    assert streams_with_alarm <= bounds.streams_with_false_alarm
    assert per_1000 <= bounds.false_alarms_per_1000


@NAMES
def test_a_two_sigma_shift_is_detected_within_the_documented_delay(name: str) -> None:
    bounds = BOUNDS[name]
    delays, missed = [], 0
    for seed in range(bounds.streams):
        found = bounds.make(seed).update_many(stream(name, seed, shifted=True))
        after = found[found >= CHANGE]
        if len(after):
            delays.append(int(after[0]) - CHANGE)
        else:
            missed += 1
    assert missed <= bounds.missed * bounds.streams
    assert np.median(delays) <= bounds.median_delay
    assert np.mean(delays) <= bounds.mean_delay
