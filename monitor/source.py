"""The seam between the service loop and a broker: records in, dead letters out.

:class:`EventSource` is what the loop needs; :class:`monitor.kafka_io.KafkaSource`
(kafka-python) and :class:`monitor.confluent_io.ConfluentSource` (librdkafka) are the
real ones and :class:`MemorySource` an in-memory one for unit tests. What both real ones
share, whatever the client, is here: the partition owner they report rebalances to, the
dead-letter record, and connecting with backoff (:class:`BrokerSource`).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

if TYPE_CHECKING:
    from monitor.config import KafkaSettings

__all__ = [
    "DLQ_HEADER_PREFIX",
    "Backoff",
    "BrokerSource",
    "DeadLetter",
    "EventSource",
    "MemoryRecord",
    "MemorySource",
    "NoOwner",
    "PartitionOwner",
    "Record",
    "dead_letter_message",
    "partition_names",
    "resume_points",
]

log = logging.getLogger(__name__)

DLQ_HEADER_PREFIX = "driftline."


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


def dead_letter_message(
    letter: DeadLetter, *, with_value: bool
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """Key, value and headers of the dead-letter record of ``letter``: the record as it
    came, plus ``driftline.*`` headers saying why and where from; without its value (and
    with a ``driftline.value_dropped`` header) when the topic would not take it."""
    record = letter.record
    headers = list(record.headers or []) + [
        (DLQ_HEADER_PREFIX + name, value.encode()) for name, value in letter.headers()
    ]
    value = record.value
    if not with_value:
        headers.append((DLQ_HEADER_PREFIX + "value_dropped", b"too_large_for_dead_letter_topic"))
        value = None
    return record.key, value, headers


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


class PartitionOwner(Protocol):
    """Who holds the state of the partitions (the service loop).

    The clients call these from inside ``poll()``, between batches, so the state agrees
    with the positions: kafka-python on its I/O thread while the loop waits, librdkafka
    on the loop's own thread. They must not call the consumer (kafka-python would
    deadlock); other clients are fine.
    """

    def on_assigned(self, partitions: list[tuple[str, int]]) -> Mapping[tuple[str, int], int]:
        """Partitions assigned; returns the offsets to resume them at (the state's)."""
        ...

    def on_revoked(self, partitions: list[tuple[str, int]]) -> None:
        """Partitions about to be taken away (or lost with the group session)."""
        ...


class NoOwner:
    """An owner that holds no state: every partition goes on at the group's offset."""

    def on_assigned(self, partitions: list[tuple[str, int]]) -> Mapping[tuple[str, int], int]:
        return {}

    def on_revoked(self, partitions: list[tuple[str, int]]) -> None:
        pass


class _TopicPartition(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...


_TP = TypeVar("_TP", bound=_TopicPartition)  # a client's own topic-partition type


def resume_points(owner: PartitionOwner, assigned: Sequence[_TP]) -> list[tuple[_TP, int]]:
    """Tell ``owner`` of the ``assigned`` partitions (anything with ``topic`` and
    ``partition``); returns those to seek, with the offset the owner's state covers
    the records before (it can be ahead of the group's offset after a crash between
    checkpoint and commit)."""
    log.info("partitions assigned: %s", partition_names(assigned))
    positions = owner.on_assigned([(tp.topic, tp.partition) for tp in assigned])
    points = []
    for tp in assigned:
        offset = positions.get((tp.topic, tp.partition))
        if offset is not None:
            log.info("%s: resuming at offset %d", partition_names([tp]), offset)
            points.append((tp, offset))
    return points


def partition_names(partitions: Iterable[Any]) -> str:
    """``topic[partition]`` of each of ``partitions`` (anything with those attributes)."""
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)) or "none"


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


_Source = TypeVar("_Source", bound="BrokerSource")


class BrokerSource:
    """What the sources on a Kafka client share: :meth:`connect`, their constructor
    retried with backoff while it raises :attr:`unreachable`."""

    #: What the client raises when no broker answers.
    unreachable: ClassVar[type[Exception]] = Exception

    def __init__(
        self,
        kafka: KafkaSettings,
        on_error: Callable[[str], None],
        bootstrap_timeout_ms: int = 5000,
        owner: PartitionOwner | None = None,
    ) -> None:
        """Connect to the broker within ``bootstrap_timeout_ms``, or raise."""

    @classmethod
    def connect(
        cls: type[_Source],
        kafka: KafkaSettings,
        stop: threading.Event,
        on_error: Callable[[str], None],
        on_attempt: Callable[[], None] = lambda: None,
        owner: PartitionOwner | None = None,
    ) -> _Source | None:
        """Connect, retrying with exponential backoff; ``None`` if stopped first.

        ``owner`` hears of partitions assigned (and says where to resume them) and
        revoked or lost (while the state that covers them can still be saved).
        """
        backoff = Backoff(kafka.connect_backoff_initial_s, kafka.connect_backoff_max_s)
        while not stop.is_set():
            on_attempt()
            try:
                return cls(kafka, on_error, owner=owner)
            except cls.unreachable as exc:
                on_error("connect")
                delay = backoff.next()
                log.warning(
                    "cannot reach Kafka at %s (%s); retrying in %.1f s",
                    kafka.bootstrap_servers,
                    type(exc).__name__,
                    delay,
                )
                stop.wait(delay)
        return None


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
