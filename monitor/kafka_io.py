"""Kafka I/O: the only module that imports kafka-python.

:class:`KafkaSource` reads the three event topics in one consumer group, sends
rejected records to the dead-letter topic and commits offsets on request. Kafka
errors are counted and turned into return values here; none reaches the loop.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from kafka.record import util as _record_util
from kafka.structs import OffsetAndMetadata, TopicPartition

from monitor.checkpoint import CheckpointError
from monitor.config import KafkaSettings
from monitor.errors import DriftlineError
from monitor.source import (
    BrokerSource,
    DeadLetter,
    NoOwner,
    PartitionOwner,
    Record,
    dead_letter_message,
    partition_names,
    resume_points,
)

__all__ = ["KafkaSource", "KafkaStateStore", "client_version", "crc_fast_path", "ensure_topics"]

log = logging.getLogger(__name__)


def client_version() -> str:
    """The client library, for the log at start."""
    import kafka

    return f"kafka-python {kafka.__version__}"


def crc_fast_path() -> bool:
    """Whether kafka-python checks record CRCs with the ``crc32c`` extension."""
    return getattr(_record_util, "crc32c_c", None) is not None


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by consumer, producer and admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    for name in ("ssl_cafile", "ssl_certfile"):
        if getattr(kafka, name) is not None:
            options[name] = getattr(kafka, name)
    if kafka.ssl_keyfile is not None:
        options["ssl_keyfile"] = kafka.ssl_keyfile.get_secret_value()
    if kafka.ssl_password is not None:
        options["ssl_password"] = kafka.ssl_password.get_secret_value()
    return options


def ensure_topics(kafka: KafkaSettings, names: Sequence[str], partitions: int = 1) -> None:
    """Create the topics that do not exist yet (used by the local broker and tests)."""
    admin = KafkaAdminClient(**client_options(kafka))
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in dict.fromkeys(names) if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile
                admin.create_topics(missing)
    finally:
        admin.close()


class KafkaStateStore:
    """Checkpoints of shards (partition numbers) on a compacted topic, keyed
    ``<group>/<shard>``: whichever instance of the group is assigned a shard's
    partitions reads its latest state from here.

    Records are one checkpoint each (see :mod:`monitor.checkpoint`); the topic needs a
    ``max.message.bytes`` as large as the largest shard state (created with 64 MiB).
    """

    MAX_BYTES: Final = 64 << 20

    def __init__(self, kafka: KafkaSettings, topic: str, timeout_s: float = 30.0) -> None:
        self._kafka = kafka
        self._topic = topic
        self._timeout_s = timeout_s
        self._producer: KafkaProducer | None = None  # made on first use: the broker
        # may not be up when the daemon starts

    def _ready(self, kind: str) -> KafkaProducer:
        if self._producer is None:
            try:
                _ensure_state_topic(self._kafka, self._topic)
                self._producer = _construct(
                    KafkaProducer,
                    **client_options(self._kafka),
                    acks="all",
                    linger_ms=0,
                    max_request_size=self.MAX_BYTES,
                )
            except KafkaError as exc:
                raise CheckpointError(kind, f"state topic {self._topic}: {exc}") from None
        return self._producer

    def _key(self, shard: int) -> bytes:
        return f"{self._kafka.group_id}/{shard}".encode()

    def save(self, shard: int, data: bytes) -> None:
        """Write one shard's checkpoint and wait for the broker's acknowledgement."""
        producer = self._ready("write")
        try:
            future = producer.send(self._topic, value=data, key=self._key(shard))
            producer.flush(timeout=self._timeout_s)
            future.get(timeout=0)
        except KafkaError as exc:
            raise CheckpointError("write", f"state topic {self._topic}: {exc}") from None

    def load(self, shards: Iterable[int]) -> dict[int, bytes]:
        """The latest checkpoint of each of ``shards`` that has one (reads the topic)."""
        wanted = {self._key(shard): shard for shard in shards}
        if not wanted:
            return {}
        found: dict[int, bytes] = {}
        self._ready("read")
        try:
            consumer = _construct(
                KafkaConsumer,
                **client_options(self._kafka),
                group_id=None,
                enable_auto_commit=False,
                fetch_max_bytes=self.MAX_BYTES,
                max_partition_fetch_bytes=self.MAX_BYTES,
            )
        except KafkaError as exc:
            raise CheckpointError("read", f"state topic {self._topic}: {exc}") from None
        try:
            partitions = [
                TopicPartition(self._topic, p)
                for p in sorted(consumer.partitions_for_topic(self._topic) or ())
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            deadline = time.monotonic() + self._timeout_s
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                if time.monotonic() > deadline:
                    raise CheckpointError("read", f"state topic {self._topic}: read timed out")
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        shard = wanted.get(record.key)
                        if shard is not None and record.value is not None:
                            found[shard] = record.value
        except KafkaError as exc:
            raise CheckpointError("read", f"state topic {self._topic}: {exc}") from None
        finally:
            consumer.close(autocommit=False)
        return found

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)


def _ensure_state_topic(kafka: KafkaSettings, topic: str) -> None:
    admin = KafkaAdminClient(**client_options(kafka))
    try:
        if topic in set(admin.list_topics()):
            return
        configs = {"cleanup.policy": "compact", "max.message.bytes": str(KafkaStateStore.MAX_BYTES)}
        with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile
            admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    finally:
        admin.close()


class KafkaSink:
    """A producer of event records by stream name (for ``driftline simulate``)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        topics = kafka.topics
        self._topics = {
            "predictions": topics.predictions,
            "outcomes": topics.outcomes,
            "signals": topics.signals,
        }
        try:
            self._producer = _construct(KafkaProducer, **client_options(kafka), linger_ms=20)
        except KafkaError as exc:
            raise DriftlineError(
                f"cannot reach Kafka at {kafka.bootstrap_servers}: {exc}"
            ) from None
        self.errors = 0

    def send(self, stream: str, key: bytes, value: bytes) -> None:
        try:
            self._producer.send(self._topics[stream], value=value, key=key)
        except KafkaError as exc:
            self.errors += 1
            log.warning("cannot send to %s: %s", self._topics[stream], exc)

    def close(self) -> None:
        try:
            self._producer.flush(timeout=30)
        finally:
            self._producer.close(timeout=10)


class _Assignment(ConsumerRebalanceListener):
    """Tracks the assignment; on a change, lets the owner checkpoint and seek.

    kafka-python calls these during ``poll()`` (on its I/O thread, while the loop waits
    for ``poll()`` to return), between batches: the state agrees with the positions.
    """

    def __init__(self, owner: PartitionOwner) -> None:
        self.partitions: set[TopicPartition] = set()
        self.consumer: KafkaConsumer | None = None
        self._owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("partitions revoked: %s", partition_names(revoked))
        if revoked:
            self._owner.on_revoked([(tp.topic, tp.partition) for tp in revoked])
        self.partitions.difference_update(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.partitions.update(assigned)
        for tp, offset in resume_points(self._owner, list(assigned)):
            if self.consumer is not None:
                # seek only sets the position; nothing here may block: this runs on
                # kafka-python's I/O thread.
                self.consumer.seek(tp, offset)


class KafkaSource(BrokerSource):
    """Consumer of the event topics plus producer of dead letters.

    Use :meth:`connect`, which retries with backoff until the broker answers or
    ``stop`` is set.
    """

    unreachable = KafkaError

    def __init__(
        self,
        kafka: KafkaSettings,
        on_error: Callable[[str], None],
        bootstrap_timeout_ms: int = 5000,
        owner: PartitionOwner | None = None,
    ) -> None:
        self._kafka = kafka
        self._on_error = on_error
        self._assignment = _Assignment(owner or NoOwner())
        options = client_options(kafka)
        topics = kafka.topics
        self._consumer = _construct(
            KafkaConsumer,
            **options,
            group_id=kafka.group_id,
            auto_offset_reset=kafka.auto_offset_reset,
            enable_auto_commit=False,
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
        try:
            self._producer = _construct(
                KafkaProducer,
                **options,
                acks="all",
                linger_ms=5,
                max_request_size=kafka.dead_letter_max_bytes,
                bootstrap_timeout_ms=bootstrap_timeout_ms,
            )
        except BaseException:
            self._consumer.close(autocommit=False)
            raise
        self._assignment.consumer = self._consumer
        self._consumer.subscribe(
            [topics.predictions, topics.outcomes, topics.signals], listener=self._assignment
        )
        self._pending: list[tuple[DeadLetter, Any]] = []

    # -- consuming ---------------------------------------------------------

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        try:
            batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            self._error("poll", exc)
            return []
        records: list[Record] = []
        for partition_records in batches.values():
            records.extend(partition_records)
        return records

    def ready(self) -> bool:
        """Partitions assigned, and the group coordinator known and answering heartbeats.

        When the broker stops answering (frozen, or cut off by the network) kafka-python
        keeps the assignment until it can rejoin, so the assignment alone says "ready"
        through a whole outage. The heartbeat thread's view says otherwise once the
        session timeout passes without a heartbeat response (the broker would have
        dropped us from the group by then anyway).
        """
        return bool(self._assignment.partitions) and self._group_alive()

    def _group_alive(self) -> bool:
        # Private attributes: kafka-python has no public view of the group membership
        # (``metrics()`` is documented as unstable, and its "last-heartbeat-seconds-ago"
        # counts heartbeats sent, not answered). Another version without them falls back
        # to the assignment alone.
        coordinator = getattr(self._consumer, "_coordinator", None)
        heartbeat = getattr(coordinator, "heartbeat", None)
        if coordinator is None or heartbeat is None:
            return True
        return (
            getattr(coordinator, "coordinator_id", 0) is not None
            and not heartbeat.session_timeout_expired()
        )

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the high-water mark, from the fetcher's own view of each partition."""
        lag: dict[tuple[str, int], int] = {}
        for tp in list(self._assignment.partitions):
            try:
                high = self._consumer.highwater(tp)
                position = self._consumer.position(tp, timeout_ms=100)
            except KafkaError:
                continue
            if high is not None and position is not None:
                lag[(tp.topic, tp.partition)] = max(0, high - position)
        return lag

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        """Commit ``offsets`` (next offset to read, per topic and partition)."""
        assigned = {(tp.topic, tp.partition) for tp in self._assignment.partitions}
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not offsets:
            return True  # partitions revoked meanwhile: their new owner commits them
        try:
            # Bounded by the session timeout, not kafka-python's request timeout (30 s by
            # default): during an outage the loop would otherwise sit in each commit for
            # that long, unable to report not-ready. Offsets are cumulative: the next
            # batch's commit covers one that timed out.
            self._consumer.commit(
                {
                    TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                    for (t, p), o in offsets.items()
                },
                timeout_ms=self._kafka.session_timeout_ms,
            )
        except KafkaError as exc:
            self._error("commit", exc)
            return False
        return True

    # -- dead letters --------------------------------------------------------

    def send_dead_letter(self, letter: DeadLetter) -> None:
        """Queue ``letter``; :meth:`flush_dead_letters` waits for the broker's ack."""
        self._pending.append((letter, self._send(letter, with_value=True)))

    def flush_dead_letters(self, timeout_s: float = 30.0) -> list[DeadLetter]:
        """Wait for queued dead letters; returns those the broker did not take."""
        if not self._pending:
            return []
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            self._error("dead_letter", exc)
        failed: list[DeadLetter] = []
        for letter, future in self._pending:
            if future is not None and future.succeeded():
                continue
            error = getattr(future, "exception", None)
            if isinstance(error, MessageSizeTooLargeError):
                # The broker refuses the payload: keep the evidence, drop the bytes.
                retry = self._send(letter, with_value=False)
                with contextlib.suppress(KafkaError):  # judged by the future below
                    self._producer.flush(timeout=timeout_s)
                if retry is not None and retry.succeeded():
                    continue
            self._error("dead_letter", error)
            failed.append(letter)
        self._pending = []
        return failed

    def _send(self, letter: DeadLetter, *, with_value: bool) -> Any:
        key, value, headers = dead_letter_message(letter, with_value=with_value)
        if value is None and key is None:
            key = b""  # kafka-python sends no record without a key or a value
        try:
            return self._producer.send(
                self._kafka.topics.dead_letter, value=value, key=key, headers=headers
            )
        except MessageSizeTooLargeError as exc:
            if with_value:
                return self._send(letter, with_value=False)
            self._error("dead_letter", exc)
        except KafkaError as exc:
            self._error("dead_letter", exc)
        return None

    def publish_alerts(
        self, records: Sequence[tuple[bytes, bytes]], timeout_s: float = 10.0
    ) -> list[tuple[bytes, bytes]]:
        """Send alert transitions, keyed by instance; returns those not acknowledged."""
        futures = []
        for key, value in records:
            try:
                futures.append(self._producer.send(self._kafka.topics.alerts, value, key))
            except KafkaError as exc:
                self._error("alert", exc)
                futures.append(None)
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            self._error("alert", exc)
        failed = []
        for record, future in zip(records, futures, strict=True):
            if future is None or not future.succeeded():
                if future is not None:
                    self._error("alert", getattr(future, "exception", None))
                failed.append(record)
        return failed

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Leave the group and close connections (offsets are committed by the caller)."""
        try:
            self._producer.close(timeout=10)
        finally:
            self._consumer.close(autocommit=False)

    def _error(self, kind: str, exc: BaseException | None) -> None:
        self._on_error(kind)
        log.warning("kafka %s error: %s", kind, exc if exc is not None else "timed out")


_Client = TypeVar("_Client", KafkaConsumer, KafkaProducer)


def _construct(cls: type[_Client], **config: Any) -> _Client:
    """``cls(**config)``, without leaking its network thread when bootstrapping fails.

    kafka-python starts the client's I/O thread before it bootstraps and does not stop
    it when the constructor raises; a daemon retrying for hours would pile them up.
    """
    client: _Client = object.__new__(cls)
    try:
        client.__init__(**config)
    except BaseException:
        partial = getattr(client, "_client", None)  # private, but the only handle there is
        if partial is not None:
            with contextlib.suppress(Exception):
                partial.close()
        raise
    return client
