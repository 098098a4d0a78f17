"""The pure helpers of benchmarks/e2e.py: what it counts and how it turns scrapes into
latencies (no broker here; the benchmark itself runs against one)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from driftline_testing import script_module

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "e2e.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with script_module(PATH, "benchmark_e2e") as module:
        yield module


def test_events_are_valid_json_in_time_order_with_the_documented_mix(bench: ModuleType) -> None:
    events = bench.make_events(2000, seed=1, start_s=1_700_000_000.0, interval_s=1.0)
    counts = bench.stream_counts(events)
    assert counts["predictions"] == 2000
    assert 0.6 < counts["outcomes"] / 2000 < 0.75
    assert 0.05 < counts["signals"] / 2000 < 0.15
    times = [e.time_s for e in events]
    assert times == sorted(times)
    prediction = next(json.loads(e.value(123.5)) for e in events if e.stream == "predictions")
    assert prediction["timestamp"] == 123.5
    assert len(prediction["features"]) == 25
    assert sum(isinstance(v, str) for v in prediction["features"].values()) == 5
    for event in events:
        body = json.loads(event.value(event.time_s))
        assert body["model"].encode() == event.key
        assert ("label" in body) == (event.stream == "outcomes")
        assert ("signal" in body) == (event.stream == "signals")


def test_events_total_sums_every_series_and_nothing_else(bench: ModuleType) -> None:
    exposition = "\n".join(
        [
            "# HELP driftline_events_total Events.",
            "# TYPE driftline_events_total counter",
            'driftline_events_total{model="a",status="ok",stream="predictions"} 10.0',
            'driftline_events_total{model="a",status="unmatched",stream="outcomes"} 2.0',
            'driftline_events_created{model="a",status="ok",stream="predictions"} 1.7e+09',
            "driftline_events_totally_other 99.0",
        ]
    )
    assert bench.events_total(exposition) == 12.0


def test_latency_is_the_first_poll_that_counts_the_event_less_its_send_time(
    bench: ModuleType,
) -> None:
    sends = [0.0, 0.1, 0.2, 0.3]
    polls = [(0.05, 0.0), (0.15, 1.0), (0.25, 1.0), (0.35, 3.0), (0.45, 3.0)]
    assert bench.latencies(sends, polls) == pytest.approx([0.15, 0.25, 0.15])


def test_percentile_by_nearest_rank(bench: ModuleType) -> None:
    values = list(range(1, 101))
    assert bench.percentile(values, 0.5) == 50
    assert bench.percentile(values, 0.99) == 99
    assert math.isnan(bench.percentile([], 0.5))


def test_library_time_is_charged_to_the_callers_areas(bench: ModuleType) -> None:
    decode = ("/x/monitor/events.py", 1, "decode")
    join = ("/x/monitor/join.py", 1, "add")
    library = ("/usr/lib/python3.11/json/decoder.py", 1, "raw_decode")
    stats = {
        decode: (1, 1, 1.0, 2.0, {}),
        join: (1, 1, 2.0, 5.0, {}),
        library: (2, 2, 4.0, 4.0, {decode: (1, 1, 1.0, 1.0), join: (1, 1, 3.0, 3.0)}),
    }
    assert bench.areas(stats) == pytest.approx(
        {"decode + validation": 2.0, "join + performance": 5.0}
    )


def test_metric_sum_matches_the_whole_name_only(bench: ModuleType) -> None:
    exposition = "driftline_checkpoints_total 3.0\ndriftline_checkpoints_total_x 9.0\n"
    assert bench.metric_sum(exposition, "driftline_checkpoints_total") == 3.0


def test_longest_stall_is_the_longest_time_between_two_growths(bench: ModuleType) -> None:
    polls = [(0.0, 0.0), (0.1, 5.0), (0.2, 5.0), (0.3, 5.0), (1.1, 9.0), (1.2, 12.0)]
    assert bench.longest_stall(polls) == pytest.approx(1.0)
    assert bench.longest_stall([(0.0, 1.0)]) == 0.0


def test_repeated_pairs_report_each_ratio_and_their_median(bench: ModuleType) -> None:
    def throughput(rate: float, cpu_us: float = 100.0) -> object:
        return bench.Throughput(
            events=10_000,
            started_t=-1.0,
            first_t=0.0,
            first_count=0,
            end_t=10_000 / rate,
            cpu_total_s=2.0,
            cpu_window_s=cpu_us * 0.01,
            peak_rss=100 << 20,
            extra={"crc_fast_path": True, "decoder": "json"},
        )

    assert bench.parse_args([]).pairs == 3
    assert bench.parse_args([]).floor
    assert bench.parse_args(["--quick"]).pairs == 1
    rates = ((40_000, 20_000), (50_000, 40_000), (30_000, 27_000))
    pairs = [bench.Pair(throughput(a), throughput(b)) for a, b in rates]
    assert [round(p.ratio, 3) for p in pairs] == [0.5, 0.8, 0.9]
    results = bench.Results(command="x", facts={}, phases=bench.Phases())
    results.pairs = pairs
    results.raw, results.driftline = pairs[-1].raw, pairs[-1].daemon
    lines = bench.report_lines(results)
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert [row[3] for row in rows] == ["0.50", "0.80", "0.90"]
    median = next(line for line in lines if line.startswith("| median"))
    assert "**0.80** (0.50–0.90)" in median
    # With the floor: its columns, and the budget it leaves at 0.8x.
    for p, cpu in zip(pairs, (10.0, 12.0, 11.0), strict=True):
        p.floor = throughput(60_000, cpu)
    lines = bench.report_lines(results)
    header = next(line for line in lines if line.startswith("| pair"))
    assert header.count("(f)") == 2
    budget = next(line for line in lines if line.startswith("- medians"))
    # CPU per event: (a) 100, (f) 11, (b) 100 (medians): 100 / 0.8 - 11 = 114.
    assert "the floor 11.0" in budget and "spend 114.0 µs" in budget
    assert not any("not measured" in line for line in lines)
    # A run that counted everything at its first scrape measured no rate: said so.
    pairs[0].daemon.first_count = pairs[0].daemon.events
    assert any("not measured" in line for line in bench.report_lines(results))
    # One pair without the floor: no table of pairs.
    results.pairs = [bench.Pair(pairs[0].raw, pairs[0].daemon)]
    assert not any(line.startswith("| median") for line in bench.report_lines(results))


def test_both_clients_add_the_confluent_rows_with_their_ratios_to_the_same_ceiling(
    bench: ModuleType,
) -> None:
    def throughput(rate: float, cpu_us: float) -> object:
        # 10,000 events from t=0 to t=10_000/rate, CPU to match.
        seconds = 10_000 / rate
        return bench.Throughput(
            events=10_000,
            started_t=-1.0,
            first_t=0.0,
            first_count=0,
            end_t=seconds,
            cpu_total_s=cpu_us * 0.01 + 1,
            cpu_window_s=cpu_us * 0.01,
            peak_rss=100 << 20,
            extra={"crc_fast_path": True, "decoder": "json"},
        )

    assert bench.parse_args([]).client == "kafka-python"
    assert bench.parse_args(["--client", "both"]).client == "both"
    results = bench.Results(command="x", facts={}, phases=bench.Phases())
    results.raw, results.driftline = throughput(40_000, 30), throughput(20_000, 60)
    default = bench.report_lines(results)
    assert [line.split(" |")[0] for line in default if line.startswith("| (")] == [
        "| (a) raw kafka-python consumer + json decode",
        "| (b) driftline run, default detectors",
        "| (c) ratio b / a",
    ]
    results.raw_confluent, results.confluent = throughput(80_000, 10), throughput(30_000, 40)
    rows = {
        line.split(" | ")[0]: line.split(" | ")[1]
        for line in bench.report_lines(results)
        if line.startswith("| (")
    }
    assert rows["| (a2) raw confluent-kafka consumer + json decode"] == "80,000"
    assert rows["| (b2) driftline run, default detectors, kafka.client confluent"] == "30,000"
    assert rows["| (c2) ratio b2 / a"] == "**0.75**"
    assert rows["| (c3) ratio b2 / a2"] == "**0.38**"


def test_the_profile_of_the_batch_path_runs_and_reports_every_area(bench: ModuleType) -> None:
    report = bench.run_profile(600, seed=3)
    assert report.events > 600 and report.batch_s > 0
    assert report.stream_counts["predictions"] > 0 and report.checkpoint_bytes > 0
    lines = "\n".join(bench.profile_lines(report))
    for area in ("decode + validation", "join + performance", "service loop"):
        assert area in lines
    assert sum(report.areas.values()) == pytest.approx(report.profiled_s, rel=0.2)
