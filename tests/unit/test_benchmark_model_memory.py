"""benchmarks/model_memory.py on a tiny run: its events are valid and its report adds up."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from driftline_testing import script_module

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "model_memory.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with script_module(PATH, "benchmark_model_memory") as module:
        yield module


def test_the_stream_sends_every_model_in_turn_with_outcomes_and_signals_in_time_order(
    bench: ModuleType,
) -> None:
    names = bench.model_names(10)
    stream = bench.EventStream(4000, 10_000, names, label_delay_s=60.0)
    events = [json.loads(stream.readline()) for _ in range(4000)]
    assert stream.readline() == b""

    predictions = [e for e in events if "label" not in e and "signal" not in e]
    assert [e["model"] for e in predictions[:20]] == [*names, *names]
    assert {len(e["features"]) for e in predictions} == {50}
    assert sum(isinstance(v, str) for v in predictions[0]["features"].values()) == 10
    kinds = Counter(
        "outcome" if "label" in e else "signal" if "signal" in e else "p" for e in events
    )
    assert 0.75 < kinds["outcome"] / kinds["p"] < 0.85
    assert 0.05 < kinds["signal"] / kinds["p"] < 0.2
    times = [e["timestamp"] for e in events]
    assert times == sorted(times)
    assert stream.counts == {
        "predictions": kinds["p"],
        "outcomes": kinds["outcome"],
        "signals": kinds["signal"],
    }


def test_a_tiny_run_samples_rss_and_checkpoints_and_reports_every_row(
    bench: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "results.md"
    argv = ["--events", "8000", "--every", "2000", "--reference-rows", "300", "--write", str(out)]
    assert bench.main(argv) == 0

    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "events" not in line]
    cells = [row.split(" | ") for row in rows]
    assert [c[0] for c in cells] == ["| 0", "| 2,000", "| 4,000", "| 6,000", "| 8,000"]
    assert all(float(c[5]) > 0 for c in cells)  # RSS, MiB
    assert all(float(c[7]) > 0 and float(c[8]) > 0 for c in cells)  # peaks: events, checkpoint
    gz, text_mib = float(cells[-1][9]), float(cells[-1][10])
    assert 0 < gz < text_mib  # the checkpoint holds the ten references
    assert sum(int(c.replace(",", "")) for c in cells[-1][1:4]) == 8000
    assert "RSS growth from 4,000 to 8,000 events" in text
    assert "references of 300 rows" in text
    assert "join store: " in text and "waiting predictions at the end" in text
