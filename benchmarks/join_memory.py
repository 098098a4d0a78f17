"""Memory of the daemon's pipeline over predictions whose outcomes never come.

Run ``python benchmarks/join_memory.py [--events N] [--ttl-s S] [--max-predictions M]``.

Method
------
The events go through :func:`monitor.replay.replay`, which runs the daemon's own
:meth:`monitor.service.Service.process_batch` (decode, pipeline, join, telemetry) over a
JSON-lines byte stream. The stream is :class:`PredictionStream`, a file-like object whose
``readline()`` makes each line on demand, so the input takes no memory: ``N`` predictions
of model ``m`` with unique ids, event times 1 s apart, two numeric and two categorical
features and a score. No outcome is ever sent, so every prediction waits in the join
store until it expires (its ``ttl_s`` passed, in event time) or is evicted (the store
holds ``max_predictions``).

The benchmark hands ``replay()`` the :class:`~monitor.pipeline.Pipeline` to run, built
from the same settings, and keeps a reference to it for sampling. Every
``--every`` lines, ``readline()`` records, before making the next line:

* the resident set size from ``/proc/self/statm`` (``ru_maxrss`` for the peak);
* the join store's entries and its expired / evicted counts;
* the time spent so far, and the part of it spent making lines.

``replay()`` reads in batches of 1,000 lines and processes a batch before reading the
next, so at a checkpoint after line ``n`` (a multiple of 1,000) exactly ``n`` events
have been processed.

The store's size is bounded by ``min(max_predictions, ttl_s / 1 s)`` here. Once it is
at that bound, entries leave as fast as they arrive and RSS should stay flat; the
"growth" line compares RSS at half the events with RSS at the end. The bytes per entry
are measured two ways: the RSS slope while the store fills (from the first checkpoint to
the last one before it is full), and a static count over the stored entries
(``sys.getsizeof`` of key, entry, payload and score, plus the ``OrderedDict``'s own size
divided by its length). The theoretical bound is the bound on entries times the slope.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from _common import bytes_per_join_entry

import monitor.replay as replay_module
from monitor.config import Settings
from monitor.pipeline import Pipeline

START_TIME_S = 1_700_000_000.0
INTERVAL_S = 1.0
_PAGE = resource.getpagesize()
_MIB = 1 << 20
COUNTRIES = ("de", "fr", "us", "gb", "br", "in", "jp")
DEVICES = ("ios", "android", "web")


def rss_bytes() -> int:
    """The resident set size of this process now."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def peak_rss_bytes() -> int:
    """The largest resident set size of this process so far (``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(frozen=True)
class Checkpoint:
    lines: int
    rss: int
    entries: int | None  # join store entries; None if the pipeline was not reachable
    expired: int
    evicted: int
    elapsed_s: float
    making_s: float  # of elapsed_s, the time spent making lines


@dataclass
class PredictionStream:
    """A file-like object that makes ``events`` prediction lines on demand and samples memory.

    Cheap arithmetic stands in for randomness so that making a line costs little and
    every run is the same.
    """

    events: int
    every: int
    pipeline: Pipeline | None = None
    checkpoints: list[Checkpoint] = field(default_factory=list)
    _served: int = 0
    _started: float = 0.0
    _making_s: float = 0.0
    _lines: Iterator[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._lines = self._generate()

    def readline(self) -> bytes:
        entered = time.perf_counter()
        if self._served == 0:
            self._started = entered
        if self._served % self.every == 0 or self._served == self.events:
            self._sample(entered)
        line = next(self._lines, b"")
        if line:
            self._served += 1
        self._making_s += time.perf_counter() - entered
        return line

    def _sample(self, now: float) -> None:
        if self.checkpoints and self.checkpoints[-1].lines == self._served:
            return  # the end of the stream is read more than once
        join = None if self.pipeline is None else self.pipeline.join
        point = Checkpoint(
            lines=self._served,
            rss=rss_bytes(),
            entries=None if join is None else len(join),
            expired=0 if join is None else join.counts.expired,
            evicted=0 if join is None else join.counts.evicted_predictions,
            elapsed_s=now - self._started,
            making_s=self._making_s,
        )
        self.checkpoints.append(point)
        entries = "?" if point.entries is None else f"{point.entries:,}"
        print(
            f"{point.lines:>10,} lines  {point.rss / _MIB:8.1f} MiB  "
            f"{entries:>8} in the store  {point.elapsed_s:7.1f} s",
            file=sys.stderr,
            flush=True,
        )

    def _generate(self) -> Iterator[bytes]:
        for i in range(self.events):
            amount = (i * 7919) % 10_000 / 100
            age = 18 + (i * 31) % 60
            country = COUNTRIES[(i * 13) % len(COUNTRIES)]
            device = DEVICES[(i * 5) % len(DEVICES)]
            score = (i * 104_729) % 1000 / 1000
            yield (
                f'{{"model":"m","id":"p-{i:08d}","timestamp":{START_TIME_S + i * INTERVAL_S},'
                f'"features":{{"amount":{amount},"age":{age},"country":"{country}",'
                f'"device":"{device}"}},"prediction":{score}}}\n'
            ).encode()


def run(events: int, every: int, settings: Settings) -> tuple[PredictionStream, Pipeline | None]:
    stream = PredictionStream(events, every)
    stream.pipeline = Pipeline(settings)
    result = replay_module.replay(
        stream,  # type: ignore[arg-type]  # readline() is all replay reads
        settings,
        start_time_s=START_TIME_S,
        pipeline=stream.pipeline,
    )
    if result.lines != events:
        raise RuntimeError(f"replay read {result.lines:,} lines, expected {events:,}")
    return stream, stream.pipeline


def store_bound(settings: Settings) -> tuple[int, str]:
    """The most entries the store can hold with events 1 s apart, and which limit sets it."""
    join = settings.join
    by_ttl = int(join.ttl_s / INTERVAL_S) + 1  # an entry expires once strictly older than ttl_s
    if join.max_predictions <= by_ttl:
        return join.max_predictions, "capacity"
    return by_ttl, "TTL"


def table(points: Sequence[Checkpoint]) -> list[str]:
    lines = [
        "| lines | store entries | expired | evicted | RSS (MiB) | Δ RSS (MiB) | elapsed (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous = points[0].rss
    for p in points:
        entries = "n/a" if p.entries is None else f"{p.entries:,}"
        lines.append(
            f"| {p.lines:,} | {entries} | {p.expired:,} | {p.evicted:,} | "
            f"{p.rss / _MIB:.1f} | {(p.rss - previous) / _MIB:+.1f} | {p.elapsed_s:.1f} |"
        )
        previous = p.rss
    return lines


def per_entry(points: Sequence[Checkpoint], bound: int) -> tuple[list[str], float | None]:
    """Lines on the RSS per stored entry, and the figure to multiply the bound by.

    The store's ``OrderedDict`` keeps its deleted slots until it next resizes, and then
    sizes itself on the live entries, so its table grows once more after the store is
    full; the RSS per entry at the end, with the store at its bound, includes that step.
    """
    filling = [p for p in points if p.entries is not None and 0 < p.entries < bound]
    if len(filling) < 2:
        return [], None
    first, end, last = filling[0], filling[-1], points[-1]
    assert first.entries is not None and end.entries is not None and last.entries
    slope = (end.rss - first.rss) / (end.entries - first.entries)
    steady = (last.rss - points[0].rss) / last.entries
    return [
        f"- bytes per entry, RSS slope while the store fills ({first.lines:,} → "
        f"{end.lines:,} events): {slope:,.0f}",
        f"- bytes per entry at the end, (RSS at the end − RSS before the first event) / "
        f"entries: {steady:,.0f} (includes the rest of the pipeline)",
    ], steady


def report(
    stream: PredictionStream, pipeline: Pipeline | None, settings: Settings, peak: int
) -> str:
    points = stream.checkpoints
    join = settings.join
    bound, which = store_bound(settings)
    last = points[-1]
    half = min(points, key=lambda p: abs(p.lines - stream.events // 2))
    processing_s = last.elapsed_s - last.making_s
    lines = [
        f"join.ttl_s = {join.ttl_s:,.0f} s, join.max_predictions = {join.max_predictions:,}; "
        f"{stream.events:,} predictions 1 s apart, no outcomes",
        "",
        *table(points),
        "",
        f"- RSS growth from {half.lines:,} to {last.lines:,} events: "
        f"{(last.rss - half.rss) / _MIB:+.1f} MiB "
        f"({half.rss / _MIB:.1f} → {last.rss / _MIB:.1f} MiB); peak RSS {peak / _MIB:.1f} MiB",
        f"- throughput: {last.lines / last.elapsed_s:,.0f} events/s end to end, "
        f"{last.lines / processing_s:,.0f} events/s without making the lines "
        f"({last.making_s:.1f} of {last.elapsed_s:.1f} s)",
        f"- store bound: {bound:,} entries, the {which} bound "
        f"(min(max_predictions, ttl_s / 1 s + 1))",
    ]
    measured, figure = per_entry(points, bound)
    lines += measured
    static = None if pipeline is None else bytes_per_join_entry(pipeline)
    if static is not None:
        lines.append(f"- bytes per entry, sys.getsizeof over stored entries: {static:,.0f}")
    figure = figure or static
    if figure is not None:
        lines.append(
            f"- theoretical store size: {bound:,} × {figure:,.0f} B = "
            f"{bound * figure / _MIB:,.1f} MiB; at max_predictions: "
            f"{join.max_predictions:,} × {figure:,.0f} B = "
            f"{join.max_predictions * figure / _MIB:,.1f} MiB"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="predictions to send")
    parser.add_argument("--ttl-s", type=float, default=None, help="join.ttl_s (default 3 days)")
    parser.add_argument(
        "--max-predictions", type=int, default=None, help="join.max_predictions (default 500,000)"
    )
    parser.add_argument("--every", type=int, default=50_000, help="lines between samples")
    args = parser.parse_args(argv)
    if args.events < 1 or args.every < 1:
        parser.error("--events and --every must be >= 1")
    join: dict[str, Any] = {}
    if args.ttl_s is not None:
        join["ttl_s"] = args.ttl_s
    if args.max_predictions is not None:
        join["max_predictions"] = args.max_predictions
    settings = Settings.model_validate({"join": join})
    stream, pipeline = run(args.events, args.every, settings)
    peak = max(peak_rss_bytes(), *(p.rss for p in stream.checkpoints))
    print(report(stream, pipeline, settings, peak))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
