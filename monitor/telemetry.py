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
        self._events: Counter[tuple[str, str, str]] = Counter()
        self._dead_letters: Counter[str] = Counter()
        self._future: Counter[str] = Counter()
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
        index = _bucket_index(duration_s)
        with self._lock:
            self._events.update(stats.events)
            self._dead_letters.update(stats.dead_letters)
            self._future.update(stats.future_timestamps)
            for stream, ts in stats.last_event_timestamp.items():
                if ts > self._last_ts.get(stream, float("-inf")):
                    self._last_ts[stream] = ts
            self._buckets[index] += 1
            self._batch_sum += duration_s

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
            return {
                "events": [[*key, n] for key, n in self._events.items()],
                "dead_letters": dict(self._dead_letters),
                "future_timestamps": dict(self._future),
                "last_event_timestamp": dict(self._last_ts),
            }

    def load_state(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._events = Counter({(s, m, st): int(n) for s, m, st, n in state["events"]})
            self._dead_letters = Counter(state["dead_letters"])
            self._future = Counter(state["future_timestamps"])
            self._last_ts = {k: float(v) for k, v in state["last_event_timestamp"].items()}

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


def _bucket_index(value: float) -> int:
    for i, bound in enumerate(BATCH_DURATION_BUCKETS):
        if value <= bound:
            return i
    return len(BATCH_DURATION_BUCKETS)
