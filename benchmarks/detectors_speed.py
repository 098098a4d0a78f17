"""Speed of the change detectors against River's, and of one window's drift check.

Run ``python benchmarks/detectors_speed.py [--length N] [--repeat N] [--quick]
[--write PATH]``. (The name is not ``detectors.py``: a script in ``benchmarks/`` of
that name would shadow the ``detectors`` package for every other script there.)

Method
------
Streams, seeded: a 0/1 error stream whose error rate goes from 10% to 20% halfway,
and a real-valued one, normal with unit variance, whose mean goes from 0 to 0.5
halfway; ``--length`` values each (200,000), KSWIN a fiftieth of that, as both KSWIN
implementations run a two-sample test on every update. Binary-input detectors (DDM,
EDDM) read the error stream; ADWIN reads both.

For each detector, in one process: driftline's ``update`` in a Python loop over a
list of floats, driftline's ``update_many`` on the numpy array, and River 0.26's
detector of the same name in the same kind of loop. Each figure is updates per second,
the median of ``--repeat`` runs on a fresh detector; ratios are against River's
per-item loop. The detections of each run are compared: ``update_many`` must find
the indices the loop of ``update`` finds, and River the same ones (KSWIN with the same
seed). River has no CUSUM.

The window check reuses ``benchmarks/detectors_window.py``: ``WindowChecker.check``
on a 1,000-row window of 20 numeric features against a 10,000-row reference, and the
per-feature scipy baseline (``ks_2samp`` auto and asymptotic, plus numpy PSI).

Targets: ``ADWIN.update_many`` at least 5x River's per-item ADWIN, and
``WindowChecker.check`` at most 2 ms; the last line says whether each is met.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from river import drift as river_drift

from detectors import WindowChecker
from detectors.change import ADWIN, CUSUM, DDM, EDDM, KSWIN, ChangeDetector, PageHinkley

sys.path.insert(0, str(Path(__file__).resolve().parent))
import detectors_window  # noqa: E402  (a sibling script, not a package)

SEED = 20_240_601
TARGET = 5.0
WINDOW_TARGET_MS = 2.0


@dataclass(frozen=True)
class Case:
    """One detector on one stream; ``river`` is None where River has no counterpart."""

    name: str
    stream: str
    ours: Callable[[], ChangeDetector]
    river: Callable[[], Any] | None
    short: bool = False  # a fiftieth of the stream (KSWIN)


CASES = [
    Case("ADWIN", "binary", ADWIN, river_drift.ADWIN),
    Case("ADWIN", "real", ADWIN, river_drift.ADWIN),
    Case("PageHinkley", "real", PageHinkley, river_drift.PageHinkley),
    Case("DDM", "binary", DDM, river_drift.binary.DDM),
    Case("EDDM", "binary", EDDM, river_drift.binary.EDDM),
    Case("KSWIN", "real", partial(KSWIN, seed=1), partial(river_drift.KSWIN, seed=1), True),
    Case("CUSUM", "real", CUSUM, None),
]


@dataclass(frozen=True)
class Row:
    case: Case
    length: int
    update: float
    update_many: float
    river: float | None
    detections: int
    same: bool


def make_streams(length: int, seed: int) -> dict[str, npt.NDArray[np.float64]]:
    """The seeded 0/1 error stream and real-valued stream, each changing halfway."""
    rng = np.random.default_rng(seed)
    after = np.arange(length) >= length // 2
    binary = (rng.random(length) < np.where(after, 0.2, 0.1)).astype(np.float64)
    real = rng.normal(np.where(after, 0.5, 0.0), 1.0)
    return {"binary": binary, "real": real}


def loop(detector: Any, values: Sequence[float]) -> list[int]:
    """Per-item updates, as a caller without a batch would write them."""
    found = []
    for i, x in enumerate(values):
        detector.update(x)
        if detector.drift_detected:
            found.append(i)
    return found


def timed(run: Callable[[], list[int]], repeat: int) -> tuple[float, list[int]]:
    """Median seconds over ``repeat`` runs and the detections of the last."""
    times, found = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        found = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), found


def measure(case: Case, values: npt.NDArray[np.float64], repeat: int) -> Row:
    as_list = values.tolist()
    n = values.size
    per_item, looped = timed(lambda: loop(case.ours(), as_list), repeat)
    batch, batched = timed(lambda: case.ours().update_many(values).tolist(), repeat)
    river_rate = None
    same = batched == looped
    if case.river is not None:
        river_factory = case.river
        seconds, theirs = timed(lambda: loop(river_factory(), as_list), repeat)
        river_rate = n / seconds
        same = same and theirs == looped
    return Row(case, n, n / per_item, n / batch, river_rate, len(looped), same)


def change_table(rows: list[Row]) -> list[str]:
    lines = [
        "| detector | stream | values | `update` /s | `update_many` /s | River /s "
        "| `update` vs River | `update_many` vs River | detections | same |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        if row.river is None:
            river, ratio, ratio_many = "no River CUSUM", "-", "-"
        else:
            river = f"{row.river:,.0f}"
            ratio = f"{row.update / row.river:.2f}x"
            ratio_many = f"{row.update_many / row.river:.2f}x"
        lines.append(
            f"| {row.case.name} | {row.case.stream} | {row.length:,} | {row.update:,.0f} "
            f"| {row.update_many:,.0f} | {river} | {ratio} | {ratio_many} "
            f"| {row.detections} | {'yes' if row.same else 'NO'} |"
        )
    return lines


def window_table(repeat: int, baseline_repeat: int, seed: int) -> tuple[list[str], float]:
    """One scenario of benchmarks/detectors_window.py, timed with its own functions;
    the table and the median milliseconds of ``WindowChecker.check``."""
    rng = np.random.default_rng(seed)
    profile, window = detectors_window.make_data(rng, 20, 0, 0)
    checker = WindowChecker.from_profile(profile)
    fast = detectors_window.median_ms(partial(checker.check, window), repeat)
    baseline = detectors_window.baseline
    auto = detectors_window.median_ms(partial(baseline, profile, window, "auto"), baseline_repeat)
    asymp = detectors_window.median_ms(partial(baseline, profile, window, "asymp"), baseline_repeat)
    return [
        f"| window check, 20 numeric features, {detectors_window.WINDOW_ROWS:,} rows vs "
        f"{detectors_window.REFERENCE_ROWS:,} | ms |",
        "|---|--:|",
        f"| `WindowChecker.check` | {fast:.3f} |",
        f"| scipy per feature, `ks_2samp` auto (+ numpy PSI) | {auto:.2f} ({auto / fast:.0f}x) |",
        f"| scipy per feature, `ks_2samp` asymp (+ numpy PSI) | {asymp:.2f} "
        f"({asymp / fast:.0f}x) |",
    ], fast


def summary(rows: list[Row], window_ms: float) -> str:
    adwin = [row for row in rows if row.case.name == "ADWIN" and row.river]
    worst = min(row.update_many / row.river for row in adwin if row.river)
    verdict = "meets" if worst >= TARGET else "misses"
    agree = "all detections agree" if all(row.same for row in rows) else "DETECTIONS DIFFER"
    window = "meets" if window_ms <= WINDOW_TARGET_MS else "misses"
    return (
        f"ADWIN.update_many runs at {worst:.1f}x River's per-item ADWIN at worst "
        f"({verdict} the {TARGET:g}x target); {agree}. WindowChecker.check takes "
        f"{window_ms:.2f} ms ({window} the {WINDOW_TARGET_MS:g} ms target)."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=200_000, help="values per stream")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true", help="20,000 values, 3 runs")
    parser.add_argument("--write", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.length, args.repeat = min(args.length, 20_000), min(args.repeat, 3)
    streams = make_streams(args.length, args.seed)
    rows = []
    for case in CASES:
        values = streams[case.stream]
        rows.append(
            measure(case, values[: values.size // 50] if case.short else values, args.repeat)
        )
    window_repeat = (30, 3) if args.quick else (300, 7)
    window_lines, window_ms = window_table(*window_repeat, args.seed)
    lines = [*change_table(rows), "", *window_lines, "", summary(rows, window_ms)]
    report = "\n".join(lines)
    print(report)
    if args.write:
        command = " ".join(["python benchmarks/detectors_speed.py", *(argv or sys.argv[1:])])
        args.write.write_text(f"# Detector speed\n\nCommand: `{command}`\n\n{report}\n")


if __name__ == "__main__":
    main()
