"""The seam between the service loop and a broker: records in, dead letters out.

:class:`EventSource` is what the loop needs; :class:`monitor.kafka_io.KafkaSource`
is the real one and :class:`MemorySource` an in-memory one for unit tests.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Backoff", "DeadLetter", "EventSource", "MemoryRecord", "MemorySource", "Record"]


class Record(Protocol):
    """The parts of a Kafka consumer record the daemon reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...  # milliseconds since the epoch
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True)
class DeadLetter:
    """A rejected record and why; the record goes to the dead-letter topic unchanged."""

    record: Record
    reason: str
    detail: str

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("reason", self.reason),
            ("detail", self.detail[:1000]),
            ("source_topic", self.record.topic),
            ("source_partition", str(self.record.partition)),
            ("source_offset", str(self.record.offset)),
        ]


class EventSource(Protocol):
    def poll(self, timeout_ms: int, max_records: int) -> list[Record]: ...
    def ready(self) -> bool: ...
    def lag(self) -> Mapping[tuple[str, int], int]: ...
    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool: ...
    def send_dead_letter(self, letter: DeadLetter) -> None: ...
    def flush_dead_letters(self, timeout_s: float = 30.0) -> list[DeadLetter]: ...
    def publish_alerts(
        self, records: Sequence[tuple[bytes, bytes]], timeout_s: float = 10.0
    ) -> list[tuple[bytes, bytes]]:
        """Send (key, value) records to the alerts topic; returns those not acknowledged."""
        ...

    def close(self) -> None: ...


class Backoff:
    """Exponential backoff with full jitter between ``initial`` and ``maximum`` seconds."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"need 0 < initial <= maximum, got {initial} and {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * 2**self._attempt)
        self._attempt += 1
        return self.initial / 2 + self._rng.random() * (ceiling - self.initial / 2)

    def reset(self) -> None:
        self._attempt = 0


@dataclass(frozen=True)
class MemoryRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp: int = 0
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class MemorySource:
    """Serves ``records`` in order; remembers commits and dead letters."""

    records: list[MemoryRecord]
    fail_dead_letters: int = 0  # how many flushes fail before the topic accepts letters
    dead_letters: list[DeadLetter] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    fail_alerts: int = 0  # how many publications fail before the topic accepts alerts
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    closed: bool = False
    _queued: list[DeadLetter] = field(default_factory=list)
    _next: int = 0

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        batch = self.records[self._next : self._next + max_records]
        self._next += len(batch)
        return list(batch)

    def ready(self) -> bool:
        return True

    def lag(self) -> dict[tuple[str, int], int]:
        lag: dict[tuple[str, int], int] = {}
        for r in self.records[self._next :]:
            lag[(r.topic, r.partition)] = lag.get((r.topic, r.partition), 0) + 1
        return lag

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        self.committed.update(offsets)
        return True

    def send_dead_letter(self, letter: DeadLetter) -> None:
        self._queued.append(letter)

    def flush_dead_letters(self, timeout_s: float = 30.0) -> list[DeadLetter]:
        if self.fail_dead_letters > 0:
            self.fail_dead_letters -= 1
            failed, self._queued = self._queued, []
            return failed
        self.dead_letters.extend(self._queued)
        self._queued = []
        return []

    def publish_alerts(
        self, records: Sequence[tuple[bytes, bytes]], timeout_s: float = 10.0
    ) -> list[tuple[bytes, bytes]]:
        if self.fail_alerts > 0:
            self.fail_alerts -= 1
            return list(records)
        self.alerts.extend(records)
        return []

    def close(self) -> None:
        self.closed = True
