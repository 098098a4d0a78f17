"""benchmarks/detection.py on a tiny configuration: the benchmark itself must measure right."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from driftline_testing import script_module
from monitor.config import ModelDefaults

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "detection.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with script_module(PATH, "benchmark_detection") as module:
        yield module


def test_the_monitor_is_built_from_the_daemon_defaults(bench: ModuleType) -> None:
    daemon = bench.Daemon(bench.policy_settings())
    defaults = ModelDefaults()
    assert daemon.monitor.reference_size == defaults.reference_size
    assert daemon.monitor.window_size == defaults.window_size
    assert daemon._policy().alpha == defaults.policy.alpha


def test_variance_doubling_doubles_the_variance_and_a_new_label_takes_its_share(
    bench: ModuleType,
) -> None:
    rng = np.random.default_rng(3)
    block = bench.draw_block(rng, 200_000)
    before = np.nanvar(block["num_01"])
    since = np.arange(200_000) - 100_000
    bench.apply_change(block, bench.SCENARIOS[1], since, rng)
    after = block["num_01"]
    assert np.nanvar(after[100_000:]) / before == pytest.approx(2.0, rel=0.03)
    assert np.nanvar(after[:100_000]) / before == pytest.approx(1.0, rel=0.03)
    bench.apply_change(block, bench.SCENARIOS[2], since, rng)
    labels = block["cat_00"][100_000:]
    present = labels[labels != None]  # noqa: E711
    assert np.mean(present == bench.NEW_LABEL) == pytest.approx(0.10, abs=0.005)
    assert bench.NEW_LABEL not in set(block["cat_00"][:100_000].tolist())


def test_a_tiny_run_detects_a_3_sigma_shift_and_makes_no_false_decision(
    bench: ModuleType,
) -> None:
    shift = bench.Scenario("shift 3σ (num_00)", "shift", "num_00", 3.0)
    config = bench.Config(
        seeds=2, stationary_seeds=1, stationary_events=10_000, horizon=2_000, scenarios=(shift,)
    )
    results = bench.run_benchmark(config)

    (stationary,) = results.stationary
    assert (stationary.windows, stationary.new_decisions, stationary.feature_windows) == (10, 0, 0)
    summary = results.policy_summary(shift.label)
    assert summary.detected == 2 and summary.wrong_runs == 0
    assert 0 < summary.worst <= 2 * ModelDefaults().window_size
    assert results.baseline_summary(shift.label).detected == 2

    table = bench.format_tables(results)
    rows = [line for line in table.splitlines() if line.startswith("| shift 3σ")]
    assert [row.split(" | ")[1] for row in rows] == ["driftline policy", "naive KS/χ²"]
    assert "| driftline policy | 0 | 0 |" in table
    line = bench.summary_line(results)
    assert "0 false decisions" in line and not math.isnan(summary.median)
