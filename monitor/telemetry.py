"""What the daemon knows about itself, kept as plain counters; no Prometheus here.

The service loop adds one :class:`BatchStats` per poll batch under a lock; the
metrics collector (:mod:`monitor.metrics`) reads an immutable :class:`Snapshot` at
scrape time. Per-event work is a dict increment, nothing more.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "BATCH_DURATION_BUCKETS",
    "OTHER",
    "UNKNOWN",
    "safe_label",
    "BatchStats",
    "LabelCap",
    "Snapshot",
    "Telemetry",
]

#: Label value for everything beyond a label's cap.
OTHER: Final = "__other__"
#: Model label of an invalid event whose model could not be read.
UNKNOWN: Final = "__unknown__"

BATCH_DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


_SAFE_LABEL = re.compile(r"[ -!#-\[\]-z|]{1,64}")  # printable ASCII but " \ { } ~


def safe_label(value: str) -> str:
    """``value`` as a metric label value: unchanged when it is 1 to 64 printable ASCII
    characters other than quotes, backslashes and braces; otherwise those characters
    replaced, cut to 48 and tagged with a hash of the original (``~`` never appears
    in an unchanged value, so two values never share a label)."""
    if _SAFE_LABEL.fullmatch(value):
        return value
    cleaned = re.sub(r"[^ -!#-\[\]-z|]", "_", value[:48])
    return f"{cleaned}~{hashlib.blake2b(value.encode(), digest_size=4).hexdigest()}"


class LabelCap:
    """Admits the first ``limit`` distinct values of a label; later ones map to ``__other__``.

    Values named in ``preset`` (models declared in the config) are admitted first
    and count toward the limit.
    """

    def __init__(self, limit: int, preset: Iterable[str] = ()) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._admitted: dict[str, None] = dict.fromkeys(list(preset)[:limit])
        self.overflowed = 0

    def __call__(self, value: str) -> str:
        if value in self._admitted:
            return value
        if len(self._admitted) < self.limit:
            self._admitted[value] = None
            return value
        self.overflowed += 1
        return OTHER

    def __len__(self) -> int:
        return len(self._admitted)

    def known(self, value: str) -> str | None:
        """``value`` if it was admitted already, else ``None``; never admits."""
        return value if value in self._admitted else None

    def discard(self, value: str) -> None:
        """Stop admitting ``value`` (it left): its place is free for another."""
        self._admitted.pop(value, None)

    def to_state(self) -> dict[str, Any]:
        return {"admitted": list(self._admitted), "overflowed": self.overflowed}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Admit the values admitted before (after the preset ones), in their order."""
        for value in state["admitted"]:
            self(str(value))
        self.overflowed = int(state["overflowed"])


@dataclass
class BatchStats:
    """Everything one batch adds; built by the loop without holding the lock."""

    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    last_event_timestamp: dict[str, float] = field(default_factory=dict)
    future_timestamps: Counter[str] = field(default_factory=Counter)

    def event_time(self, stream: str, timestamp: float) -> None:
        if timestamp > self.last_event_timestamp.get(stream, float("-inf")):
            self.last_event_timestamp[stream] = timestamp


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the telemetry, read by one scrape."""

    events: Mapping[tuple[str, str, str], int]
    dead_letters: Mapping[str, int]
    last_event_timestamp: Mapping[str, float]
    future_timestamps: Mapping[str, int]
    consumer_lag: Mapping[tuple[str, int], int]
    batch_bucket_counts: tuple[int, ...]  # per bucket (not cumulative), then +Inf
    batch_sum: float
    label_overflow: Mapping[str, int]
    kafka_errors: Mapping[str, int]
    ready: bool
    connected: bool
    checkpoints: int = 0  # written
    checkpoint_failures: Mapping[str, int] = field(default_factory=dict)  # by kind
    checkpoint_last: float | None = None  # epoch seconds of the last one written
    checkpoint_bytes: int = 0  # size of the last one written


class Telemetry:
    """Counters and gauges of one daemon, safe to read from the HTTP thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Totals (what scrapes read), and the same by shard.
        self._events: Counter[tuple[str, str, str]] = Counter()
        self._dead_letters: Counter[str] = Counter()
        self._future: Counter[str] = Counter()
        self._shards: dict[int, BatchStats] = {}
        self._last_ts: dict[str, float] = {}
        self._lag: dict[tuple[str, int], int] = {}
        self._buckets = [0] * (len(BATCH_DURATION_BUCKETS) + 1)
        self._batch_sum = 0.0
        self._label_overflow: Counter[str] = Counter()
        self._kafka_errors: Counter[str] = Counter()
        self.ready = False
        self.connected = False
        self._checkpoints = 0
        self._checkpoint_failures: Counter[str] = Counter()
        self._checkpoint_last: float | None = None
        self._checkpoint_bytes = 0

    def add_batch(self, stats: BatchStats, duration_s: float) -> None:
        """Add one batch whose records all came from partition 0 (tests, replay)."""
        self.add_counts({0: stats}, duration_s)

    def add_counts(self, shards: Mapping[int, BatchStats], duration_s: float) -> None:
        """Add one batch's counts, by the partition number (shard) their records came
        from, so that a shard's counts can leave with it when its partitions move."""
        index = _bucket_index(duration_s)
        with self._lock:
            for shard, stats in shards.items():
                self._add(shard, stats)
            self._buckets[index] += 1
            self._batch_sum += duration_s

    def _add(self, shard: int, stats: BatchStats, sign: int = 1) -> None:
        """Add (``sign`` 1) or take away (-1) ``stats`` under ``shard``; lock held."""
        mine = self._shards.setdefault(shard, BatchStats())
        if sign > 0:
            self._events.update(stats.events)
            self._dead_letters.update(stats.dead_letters)
            self._future.update(stats.future_timestamps)
            mine.events.update(stats.events)
            mine.dead_letters.update(stats.dead_letters)
            mine.future_timestamps.update(stats.future_timestamps)
            for stream, ts in stats.last_event_timestamp.items():
                mine.event_time(stream, ts)
                if ts > self._last_ts.get(stream, float("-inf")):
                    self._last_ts[stream] = ts
            return
        self._events.subtract(stats.events)
        self._dead_letters.subtract(stats.dead_letters)
        self._future.subtract(stats.future_timestamps)
        # Series of no shard here any more disappear (the collectors show known keys at 0).
        for key in [k for k, n in self._events.items() if n <= 0]:
            del self._events[key]
        for counter in (self._dead_letters, self._future):
            for name in [k for k, n in counter.items() if n <= 0]:
                del counter[name]

    def shard_state(self, shard: int) -> dict[str, Any]:
        """The counts of one shard (see :meth:`add_counts`), JSON-safe."""
        with self._lock:
            return _stats_state(self._shards.get(shard) or BatchStats())

    def add_shard(self, shard: int, state: Mapping[str, Any]) -> None:
        """Take over a shard's counts (its partitions were assigned here)."""
        stats = _stats_from_state(state)
        with self._lock:
            self._add(shard, stats)

    def drop_shard(self, shard: int) -> None:
        """Forget a shard's counts (its partitions moved elsewhere)."""
        with self._lock:
            stats = self._shards.pop(shard, None)
            if stats is not None:
                self._add(shard, stats, sign=-1)
                del self._shards[shard]  # _add made an empty one

    def set_consumer_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        with self._lock:
            self._lag = dict(lag)

    def set_label_overflow(self, label: str, count: int) -> None:
        with self._lock:
            self._label_overflow[label] = count

    def kafka_error(self, kind: str) -> None:
        with self._lock:
            self._kafka_errors[kind] += 1

    def checkpoint_written(self, at: float, size: int) -> None:
        with self._lock:
            self._checkpoints += 1
            self._checkpoint_last, self._checkpoint_bytes = at, size

    def checkpoint_failed(self, kind: str) -> None:
        with self._lock:
            self._checkpoint_failures[kind] += 1

    def event_count(self, stream: str | None = None, status: str | None = None) -> int:
        """Sum of events matching ``stream`` and ``status`` (``None`` matches all)."""
        with self._lock:
            return sum(
                n
                for (s, _model, st), n in self._events.items()
                if (stream is None or s == stream) and (status is None or st == status)
            )

    def to_state(self) -> dict[str, Any]:
        """The counts the events made (not the process's own: batches, lag, errors)."""
        with self._lock:
            return {"shards": [[shard, _stats_state(st)] for shard, st in self._shards.items()]}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the counts the events made with those of :meth:`to_state`."""
        shards = [(int(shard), _stats_from_state(st)) for shard, st in state["shards"]]
        with self._lock:
            for shard in list(self._shards):
                self._add(shard, self._shards.pop(shard), sign=-1)
            self._shards.clear()
            for shard, stats in shards:
                self._add(shard, stats)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                events=dict(self._events),
                dead_letters=dict(self._dead_letters),
                future_timestamps=dict(self._future),
                last_event_timestamp=dict(self._last_ts),
                consumer_lag=dict(self._lag),
                batch_bucket_counts=tuple(self._buckets),
                batch_sum=self._batch_sum,
                label_overflow=dict(self._label_overflow),
                kafka_errors=dict(self._kafka_errors),
                ready=self.ready,
                connected=self.connected,
                checkpoints=self._checkpoints,
                checkpoint_failures=dict(self._checkpoint_failures),
                checkpoint_last=self._checkpoint_last,
                checkpoint_bytes=self._checkpoint_bytes,
            )


def _stats_state(stats: BatchStats) -> dict[str, Any]:
    return {
        "events": [[*key, n] for key, n in stats.events.items()],
        "dead_letters": dict(stats.dead_letters),
        "future_timestamps": dict(stats.future_timestamps),
        "last_event_timestamp": dict(stats.last_event_timestamp),
    }


def _stats_from_state(state: Mapping[str, Any]) -> BatchStats:
    return BatchStats(
        events=Counter({(str(s), str(m), str(st)): int(n) for s, m, st, n in state["events"]}),
        dead_letters=Counter({str(k): int(v) for k, v in state["dead_letters"].items()}),
        last_event_timestamp={str(k): float(v) for k, v in state["last_event_timestamp"].items()},
        future_timestamps=Counter({str(k): int(v) for k, v in state["future_timestamps"].items()}),
    )


def _bucket_index(value: float) -> int:
    for i, bound in enumerate(BATCH_DURATION_BUCKETS):
        if value <= bound:
            return i
    return len(BATCH_DURATION_BUCKETS)
