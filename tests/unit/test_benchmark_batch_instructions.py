"""benchmarks/batch_instructions.py: its counted run, natively (no valgrind), counts
exactly the events after the warm-up."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from driftline_testing import script_module

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def e2e() -> Iterator[ModuleType]:
    with script_module(BENCHMARKS / "e2e.py", "benchmark_e2e_events") as module:
        yield module


def test_the_counted_part_is_every_event_after_the_models_learned_their_references(
    e2e: ModuleType,
) -> None:
    from monitor.config import Settings

    predictions = 1500
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "batch_instructions.py"), "--batch-child"]
        + [str(predictions), "none"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    counted = re.search(r"steady events: (\d+)", done.stdout)
    assert counted is not None, done.stdout

    warm = Settings().defaults.reference_size * len(e2e.MODELS)
    events = e2e.make_events(
        warm + predictions, seed=0, start_s=e2e.START_TIME_S, interval_s=3600.0 / 200_000
    )
    streams = [event.stream for event in events]
    first_steady = [i for i, s in enumerate(streams) if s == "predictions"][warm]
    assert int(counted.group(1)) == len(events) - first_steady
    assert streams[first_steady:].count("predictions") == predictions
