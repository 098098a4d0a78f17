"""Kafka I/O with confluent-kafka (librdkafka): the only module that imports it.

:class:`ConfluentSource` is the :class:`~monitor.source.EventSource` of
``kafka.client: confluent``: it behaves as :class:`monitor.kafka_io.KafkaSource` does
(one consumer group over the three event topics, dead letters and alerts through one
producer, Kafka errors counted and turned into return values) on a client that parses
records in C. Install it with ``pip install 'driftline[confluent]'``.

librdkafka runs the rebalance callbacks on the thread that calls ``consume()``, the
loop's, between batches; and its callbacks of deliveries and commits in ``flush()`` and
``consume()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from pydantic import SecretStr

from monitor.config import KafkaSettings
from monitor.errors import DriftlineError
from monitor.source import (
    Backoff,
    BrokerSource,
    DeadLetter,
    NoOwner,
    PartitionOwner,
    Record,
    dead_letter_message,
    partition_names,
    resume_points,
)

__all__ = [
    "ConfluentRecord",
    "ConfluentSource",
    "client_config",
    "client_version",
    "consumer_config",
]

log = logging.getLogger(__name__)
#: librdkafka's own log lines (connection failures, ...); see monitor.logs.
_client_log = logging.getLogger("librdkafka")

_MAX_BATCH: Final = 1_000_000  # the most consume() returns at once
_NO_HEADERS: Final[tuple[tuple[str, bytes], ...]] = ()
_PARTITION_EOF: Final = KafkaError._PARTITION_EOF
_TOO_LARGE: Final = KafkaError.MSG_SIZE_TOO_LARGE


class ConfluentRecord(NamedTuple):
    """A consumed record with the fields of :class:`monitor.source.Record`."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch; -1 when the record has none
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


def client_version() -> str:
    """The client library, for the log at start."""
    library = confluent_kafka.libversion()[0]
    return f"confluent-kafka {confluent_kafka.__version__} (librdkafka {library})"


def client_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection and security properties shared by consumer and producer, under
    librdkafka's names. Holds the secrets in the clear: never log it."""
    servers = kafka.bootstrap_servers
    config: dict[str, Any] = {
        "bootstrap.servers": servers if isinstance(servers, str) else ",".join(servers),
        "client.id": kafka.client_id,
        "security.protocol": kafka.security_protocol.lower(),
        "logger": _client_log,
    }
    sasl = kafka.sasl_mechanism is not None
    optional = {
        "sasl.mechanism": kafka.sasl_mechanism,
        "sasl.username": kafka.sasl_username if sasl else None,
        "sasl.password": _secret(kafka.sasl_password) if sasl else None,
        "ssl.ca.location": kafka.ssl_cafile,
        "ssl.certificate.location": kafka.ssl_certfile,
        "ssl.key.location": _secret(kafka.ssl_keyfile),
        "ssl.key.password": _secret(kafka.ssl_password),
    }
    config.update((key, value) for key, value in optional.items() if value is not None)
    return config


def consumer_config(kafka: KafkaSettings) -> dict[str, Any]:
    """The consumer's properties, but for its callbacks (also the e2e benchmark's)."""
    return {
        **client_config(kafka),
        "group.id": kafka.group_id,
        "auto.offset.reset": kafka.auto_offset_reset,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "session.timeout.ms": kafka.session_timeout_ms,
        "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
        # As kafka-python: the range assignor keeps co-partitioned topics together
        # (state moves by partition number), CRCs checked, and records of open
        # transactions read.
        "partition.assignment.strategy": "range",
        "check.crcs": True,
        "isolation.level": "read_uncommitted",
        # librdkafka fetches ahead up to 64 MiB (and 100,000 records a partition) by
        # default. In benchmarks/e2e.py the daemon ran as fast with 4 MiB, 60 MiB
        # smaller; with 1 MiB an event cost 30-70% more CPU (smaller batches to the
        # pipeline). It must fetch again as soon as there is room (it waits 1 s by default).
        "queued.max.messages.kbytes": 4096,
        "fetch.queue.backoff.ms": 10,
    }


class _Ack:
    """The delivery report of one produced record."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: KafkaError | None = None

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        self.done, self.error = True, error

    @property
    def succeeded(self) -> bool:
        return self.done and self.error is None


class ConfluentSource(BrokerSource):
    """Consumer of the event topics plus producer of dead letters and alerts.

    Use :meth:`connect`, which retries with backoff until the broker answers or
    ``stop`` is set.

    Commits are asynchronous, unlike kafka-python's: librdkafka offers no timeout on a
    synchronous commit, and one sent to a broker that stopped answering blocks (and
    blocks ``consume()``) until the broker is back. :meth:`commit` returns once the
    offsets are handed over; the outcome comes with a later :meth:`poll`: a failure is
    counted and the offsets are sent again with backoff, unless newer ones followed.
    :meth:`close` waits for commits in flight.
    """

    unreachable = KafkaException

    def __init__(
        self,
        kafka: KafkaSettings,
        on_error: Callable[[str], None],
        bootstrap_timeout_ms: int = 5000,
        owner: PartitionOwner | None = None,
    ) -> None:
        self._kafka = kafka
        self._on_error = on_error
        self._owner = owner or NoOwner()
        self._partitions: set[tuple[str, int]] = set()
        self._pending: list[tuple[DeadLetter, _Ack | None]] = []
        self._in_flight = 0  # commits sent, not yet answered
        self._retry: list[TopicPartition] = []  # the last commit, failed: sent again
        self._retry_at = 0.0  # at this time (monotonic)
        self._retry_backoff = Backoff(kafka.connect_backoff_initial_s, kafka.connect_backoff_max_s)
        callbacks = {"error_cb": self._client_error, "on_commit": self._committed}
        self._consumer: Consumer = _made(Consumer, consumer_config(kafka) | callbacks)
        try:
            # librdkafka connects in the background; this is where "no broker" shows.
            self._consumer.list_topics(timeout=bootstrap_timeout_ms / 1000)
            producer = {
                "acks": "all",
                "linger.ms": 5,
                "message.max.bytes": kafka.dead_letter_max_bytes,
            }
            self._producer: Producer = _made(Producer, client_config(kafka) | producer)
        except BaseException:
            self._consumer.close()  # its threads would outlive a failed attempt
            raise
        topics = kafka.topics
        self._consumer.subscribe(
            [topics.predictions, topics.outcomes, topics.signals],
            on_assign=self._assigned,
            on_revoke=self._revoked,
        )

    # -- rebalances (inside consume(), on the loop's thread) ------------------------

    def _assigned(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        self._partitions.update((tp.topic, tp.partition) for tp in assigned)
        self._retry = []  # the offsets of the previous generation are not ours to commit
        for tp, offset in resume_points(self._owner, assigned):
            tp.offset = offset
        consumer.assign(assigned)

    def _revoked(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        # Also called for partitions lost with the session (librdkafka times it out
        # itself when the coordinator stops answering): ready() turns false.
        log.info("partitions revoked: %s", partition_names(revoked))
        if revoked:
            self._owner.on_revoked([(tp.topic, tp.partition) for tp in revoked])
        self._partitions.difference_update((tp.topic, tp.partition) for tp in revoked)
        self._retry = []

    # -- consuming -------------------------------------------------------------------

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        if self._retry and not self._in_flight and time.monotonic() >= self._retry_at:
            self._send_commit(self._retry)
        try:
            messages = self._consumer.consume(min(max_records, _MAX_BATCH), timeout_ms / 1000)
        except KafkaException as exc:
            self._error("poll", exc)
            return []
        records: list[Record] = []
        append = records.append
        # Untyped: a message's topic, partition and offset are None only on an error.
        new: Callable[..., Record] = ConfluentRecord
        for m in messages:
            error = m.error()
            if error is None:
                append(
                    new(
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        m.timestamp()[1],
                        m.key(),
                        m.value(),
                        m.headers() or _NO_HEADERS,
                    )
                )
            elif error.code() != _PARTITION_EOF:
                self._error("poll", error)
        return records

    def ready(self) -> bool:
        """Partitions assigned. librdkafka revokes them (as lost) itself once the
        session timeout passes without an answer from the group coordinator."""
        return bool(self._partitions)

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the high-water mark of the last fetch response, per partition."""
        lag: dict[tuple[str, int], int] = {}
        try:
            positions = self._consumer.position([TopicPartition(t, p) for t, p in self._partitions])
        except KafkaException:
            return lag
        for tp in positions:
            try:
                high = self._consumer.get_watermark_offsets(tp, cached=True)[1]
            except KafkaException:
                continue
            if high >= 0 and tp.offset >= 0:  # both known (fetched from, and read from)
                lag[(tp.topic, tp.partition)] = max(0, high - tp.offset)
        return lag

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        """Send ``offsets`` (next offset to read, per topic and partition) for commit;
        ``False`` if the client refused them (see the class docstring)."""
        wanted = [
            TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t, p) in self._partitions
        ]
        if not wanted:
            return True  # partitions revoked meanwhile: their new owner commits them
        return self._send_commit(wanted)

    def _send_commit(self, offsets: list[TopicPartition]) -> bool:
        self._retry = []  # superseded, or being sent now
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            self._error("commit", exc)
            return False
        self._in_flight += 1
        return True

    def _committed(self, error: KafkaError | None, offsets: list[TopicPartition]) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        failed = error is not None or any(tp.error is not None for tp in offsets)
        if not failed:
            self._retry_backoff.reset()
            return
        self._error("commit", error or next(tp.error for tp in offsets if tp.error is not None))
        if self._in_flight == 0:  # else a newer commit covers these offsets
            mine = [tp for tp in offsets if (tp.topic, tp.partition) in self._partitions]
            self._retry = [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in mine]
            self._retry_at = time.monotonic() + self._retry_backoff.next()

    def _client_error(self, error: KafkaError) -> None:
        # Connection trouble and the like: librdkafka retries by itself and logs it.
        self._on_error("poll")
        log.log(logging.ERROR if error.fatal() else logging.DEBUG, "kafka client error: %s", error)

    # -- dead letters and alerts --------------------------------------------------------
    # -- dead letters and alerts --------------------------------------------------------

    def send_dead_letter(self, letter: DeadLetter) -> None:
        """Queue ``letter``; :meth:`flush_dead_letters` waits for the broker's ack."""
        self._pending.append((letter, self._send(letter, with_value=True)))

    def flush_dead_letters(self, timeout_s: float = 30.0) -> list[DeadLetter]:
        """Wait for queued dead letters; returns those the broker did not take."""
        if not self._pending:
            return []
        self._producer.flush(timeout_s)
        failed: list[DeadLetter] = []
        for letter, ack in self._pending:
            if ack is not None and ack.error is not None and ack.error.code() == _TOO_LARGE:
                # Over dead_letter_max_bytes, or refused by the broker: keep the evidence,
                # drop the bytes.
                ack = self._send(letter, with_value=False)
                self._producer.flush(timeout_s)
            if ack is None or not ack.succeeded:
                if ack is not None:  # else counted when it was refused
                    self._error("dead_letter", ack.error)
                failed.append(letter)
        self._pending = []
        return failed

    def _send(self, letter: DeadLetter, *, with_value: bool) -> _Ack | None:
        key, value, headers = dead_letter_message(letter, with_value=with_value)
        wire: list[tuple[str, str | bytes | None]] = list(headers)
        return self._produce("dead_letter", self._kafka.topics.dead_letter, key, value, wire)

    def publish_alerts(
        self, records: Sequence[tuple[bytes, bytes]], timeout_s: float = 10.0
    ) -> list[tuple[bytes, bytes]]:
        """Send alert transitions, keyed by instance; returns those not acknowledged."""
        acks = [self._produce("alert", self._kafka.topics.alerts, k, v) for k, v in records]
        self._producer.flush(timeout_s)
        failed = []
        for record, ack in zip(records, acks, strict=True):
            if ack is None or not ack.succeeded:
                if ack is not None:
                    self._error("alert", ack.error)
                failed.append(record)
        return failed

    def _produce(
        self,
        kind: str,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> _Ack | None:
        """Queue a record; ``None`` if the producer's queue is full (counted). A record
        refused at once (too large) is reported in its ack, as the broker would."""
        ack = _Ack()
        try:
            self._producer.produce(topic, value, key, headers=headers, on_delivery=ack)
        except KafkaException as exc:
            ack(exc.args[0], None)
        except BufferError as exc:
            self._error(kind, exc)
            return None
        return ack

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Leave the group and close connections (offsets are committed by the caller;
        librdkafka waits for commits in flight)."""
        try:
            self._producer.flush(10)
        finally:
            self._consumer.close()

    def _error(self, kind: str, problem: KafkaError | Exception | None) -> None:
        self._on_error(kind)
        log.warning("kafka %s error: %s", kind, "timed out" if problem is None else _text(problem))


_Client = TypeVar("_Client", Consumer, Producer)


def _made(cls: type[_Client], config: dict[str, Any]) -> _Client:
    """``cls(config)``; settings librdkafka refuses stop the start (no retry helps)."""
    try:
        return cls(config)
    except KafkaException as exc:
        raise DriftlineError(f"kafka: librdkafka refused the settings: {_text(exc)}") from None


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def _text(problem: KafkaError | Exception) -> str:
    """librdkafka's own description of ``problem`` (or of the error it carries)."""
    if isinstance(problem, KafkaException) and problem.args:
        problem = problem.args[0]
    return problem.str() if isinstance(problem, KafkaError) else str(problem)
