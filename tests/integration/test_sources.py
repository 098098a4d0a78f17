"""The two event sources, kafka-python's and librdkafka's, held to one contract against a
real broker: records with every field, resuming where the state says, commits, lag,
dead letters with their headers, alerts, and a second member taking partitions over."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from kafka import KafkaProducer

from driftline_testing import (
    CLIENTS,
    HEARTBEAT_INTERVAL_MS,
    SESSION_TIMEOUT_MS,
    TopicSet,
    committed_total,
    consume_all,
    wait_for,
)
from monitor.config import KafkaSettings, Topics
from monitor.source import DeadLetter, EventSource, MemoryRecord, Record

pytestmark = pytest.mark.integration

T0_MS = 1_700_000_000_000


@dataclass
class Owner:
    """A partition owner that resumes partitions at ``resume`` and remembers what it heard."""

    resume: dict[tuple[str, int], int] = field(default_factory=dict)
    assigned: set[tuple[str, int]] = field(default_factory=set)
    revoked: list[list[tuple[str, int]]] = field(default_factory=list)

    def on_assigned(self, partitions: list[tuple[str, int]]) -> Mapping[tuple[str, int], int]:
        self.assigned.update(partitions)
        return {tp: o for tp, o in self.resume.items() if tp in partitions}

    def on_revoked(self, partitions: list[tuple[str, int]]) -> None:
        self.revoked.append(sorted(partitions))
        self.assigned.difference_update(partitions)


def settings(bootstrap: str, topics: TopicSet, client: str, **more: int) -> KafkaSettings:
    return KafkaSettings(
        client=client,  # type: ignore[arg-type]
        bootstrap_servers=bootstrap,
        group_id=topics.group,
        topics=Topics(
            predictions=topics.predictions,
            outcomes=topics.outcomes,
            signals=topics.signals,
            dead_letter=topics.dead_letter,
            alerts=topics.alerts,
        ),
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        connect_backoff_initial_s=0.2,
        connect_backoff_max_s=1.0,
        **more,
    )


@dataclass
class Opened:
    source: EventSource
    owner: Owner
    errors: list[str]


@pytest.fixture
def open_source() -> Iterator[object]:
    """Opens sources of one client; closes them at the end of the test."""
    opened: list[EventSource] = []

    def open_(kafka: KafkaSettings, owner: Owner | None = None) -> Opened:
        if kafka.client == "confluent":
            from monitor.confluent_io import ConfluentSource as Source
        else:
            from monitor.kafka_io import KafkaSource as Source  # type: ignore[assignment]
        owner = owner or Owner()
        errors: list[str] = []
        source = Source.connect(kafka, threading.Event(), errors.append, owner=owner)
        assert source is not None
        opened.append(source)
        return Opened(source, owner, errors)

    yield open_
    for source in opened:
        source.close()


def poll_until(source: EventSource, count: int, timeout_s: float = 60.0) -> list[Record]:
    """Poll until ``count`` records came (deadline ``timeout_s``)."""
    records: list[Record] = []

    def enough() -> bool:
        records.extend(source.poll(200, 5000))
        return len(records) >= count

    wait_for(enough, timeout_s, f"{count} records", interval_s=0)
    return records


def produce_with_headers(bootstrap: str, records: list[tuple[str, int, bytes, bytes]]) -> None:
    """(topic, partition, key, value), each with a header and its own timestamp."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        futures = [
            producer.send(
                topic,
                value=value,
                key=key,
                partition=partition,
                headers=[("trace", b"t-%d" % i)],
                timestamp_ms=T0_MS + i,
            )
            for i, (topic, partition, key, value) in enumerate(records)
        ]
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=60)
    finally:
        producer.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_source_reads_every_field_commits_and_a_successor_resumes_where_the_state_says(
    kafka_bootstrap: str, topics: TopicSet, open_source: object, client: str
) -> None:
    sent = [(topics.predictions, i % 2, b"k%d" % i, b'{"n": %d}' % i) for i in range(10)]
    sent += [(topics.outcomes, 0, b"o%d" % i, b'{"o": %d}' % i) for i in range(3)]
    sent += [(topics.signals, 0, b"s", b'{"s": 0}')]
    produce_with_headers(kafka_bootstrap, sent)
    kafka = settings(kafka_bootstrap, topics, client)
    first = open_source(kafka)  # type: ignore[operator]

    records = poll_until(first.source, len(sent))
    assert len(records) == len(sent)
    by_value = {r.value: r for r in records}
    for i, (topic, partition, key, value) in enumerate(sent):
        record = by_value[value]
        assert (record.topic, record.partition, record.key) == (topic, partition, key)
        assert record.timestamp == T0_MS + i
        assert list(record.headers) == [("trace", b"t-%d" % i)]
    assert sorted(r.offset for r in records if r.topic == topics.outcomes) == [0, 1, 2]
    assert first.source.ready()
    assert first.owner.assigned == {
        (topics.predictions, 0),
        (topics.predictions, 1),
        (topics.outcomes, 0),
        (topics.signals, 0),
    }
    wait_for(
        lambda: (
            first.source.poll(100, 10) == []
            and first.source.lag()
            == {
                (topics.predictions, 0): 0,
                (topics.predictions, 1): 0,
                (topics.outcomes, 0): 0,
                (topics.signals, 0): 0,
            }
        ),
        30,
        "no lag on any partition",
    )
    # Commit part of the way: predictions[0] up to offset 2, the outcomes up to 1.
    assert first.source.commit({(topics.predictions, 0): 2, (topics.outcomes, 0): 1})
    assert first.source.commit({("not-assigned", 0): 5})  # not ours: nothing to do
    wait_for(
        lambda: (
            first.source.poll(100, 10) == [] and committed_total(kafka_bootstrap, topics.group) == 3
        ),
        30,
        "the commits on the broker",
    )
    first.source.close()
    assert first.errors == []

    # The next member resumes at the group's offsets, except where the state says
    # otherwise (here predictions[1] at 4, with nothing committed for it).
    resume = {(topics.predictions, 1): 4}
    second = open_source(kafka, Owner(resume=resume))  # type: ignore[operator]
    # predictions[0] from 2 of 0-4, [1] from 4 of 0-4, outcomes from 1 of 0-2, signals all.
    again = poll_until(second.source, 3 + 1 + 2 + 1)
    firsts: dict[tuple[str, int], int] = {}
    for r in again:
        firsts.setdefault((r.topic, r.partition), r.offset)
    assert firsts == {
        (topics.predictions, 0): 2,
        (topics.predictions, 1): 4,
        (topics.outcomes, 0): 1,
        (topics.signals, 0): 0,
    }
    assert len(again) == 7
    assert second.errors == []


@pytest.mark.parametrize("client", CLIENTS)
def test_dead_letters_keep_the_record_and_name_the_reason_and_big_ones_drop_their_value(
    kafka_bootstrap: str, topics: TopicSet, open_source: object, client: str
) -> None:
    kafka = settings(kafka_bootstrap, topics, client, dead_letter_max_bytes=4000)
    opened = open_source(kafka)  # type: ignore[operator]
    small = MemoryRecord(
        topics.predictions, 1, 17, b"{not json", key=b"churn", headers=[("trace", b"x")]
    )
    big = MemoryRecord(topics.outcomes, 0, 3, b"[" * 10_000, key=b"big")
    opened.source.send_dead_letter(DeadLetter(small, "invalid_json", "unexpected end"))
    opened.source.send_dead_letter(DeadLetter(big, "too_deep", "nested too deep"))
    assert opened.source.flush_dead_letters() == []
    assert opened.source.publish_alerts([(b"churn/FeatureDrift/x", b'{"alert": 1}')]) == []

    letters = {r.key: r for r in consume_all(kafka_bootstrap, topics.dead_letter, expected=2)}
    assert set(letters) == {b"churn", b"big"}
    first = letters[b"churn"]
    assert first.value == b"{not json"
    assert first.headers == [
        ("trace", b"x"),
        ("driftline.reason", b"invalid_json"),
        ("driftline.detail", b"unexpected end"),
        ("driftline.source_topic", topics.predictions.encode()),
        ("driftline.source_partition", b"1"),
        ("driftline.source_offset", b"17"),
    ]
    dropped = letters[b"big"]
    assert dropped.value is None
    headers = dict(dropped.headers)
    assert headers["driftline.reason"] == b"too_deep"
    assert headers["driftline.value_dropped"] == b"too_large_for_dead_letter_topic"
    alerts = consume_all(kafka_bootstrap, topics.alerts, expected=1)
    assert [(a.key, a.value) for a in alerts] == [(b"churn/FeatureDrift/x", b'{"alert": 1}')]
    # The big letter's first send was refused (too large): the one error counted.
    assert opened.errors == []


@pytest.mark.parametrize("client", CLIENTS)
def test_a_second_member_takes_partitions_over_and_the_first_hears_of_it_first(
    kafka_bootstrap: str, topics: TopicSet, open_source: object, client: str
) -> None:
    kafka = settings(kafka_bootstrap, topics, client)
    members = [open_source(kafka)]  # type: ignore[operator]
    stop = threading.Event()

    def poll(member: Opened) -> None:
        # Each member polls on a thread of its own, as each instance would: a joining
        # member's poll can wait for the others to rejoin.
        while not stop.is_set():
            member.source.poll(100, 10)

    threads = [threading.Thread(target=poll, args=(members[0],), daemon=True)]
    threads[0].start()
    try:
        wait_for(lambda: len(members[0].owner.assigned) == 4, 60, "the first member assigned")
        members.append(open_source(kafka))  # type: ignore[operator]
        threads.append(threading.Thread(target=poll, args=(members[1],), daemon=True))
        threads[1].start()
        first, second = (m.owner for m in members)
        wait_for(lambda: first.assigned and second.assigned, 90, "both members to hold some")
        wait_for(lambda: len(first.assigned | second.assigned) == 4, 30, "all partitions held")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert first.revoked, "the first member is told before its partitions go"
    assert first.assigned.isdisjoint(second.assigned)
    # Range assignment: predictions[0] and [1] go to different members.
    holds = [(topics.predictions, p) in first.assigned for p in (0, 1)]
    assert holds[0] != holds[1]
