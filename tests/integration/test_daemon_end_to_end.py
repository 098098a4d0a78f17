"""The daemon as a user runs it: a subprocess against a real broker, read through /metrics."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from driftline_testing import (
    CLIENTS,
    Daemon,
    TopicSet,
    committed_total,
    consume_all,
    create_topics,
    produce,
    wait_for,
)
from monitor.local_broker import LocalBroker, free_port

pytestmark = pytest.mark.integration

MODELS = ("churn", "fraud", "ranker")
DEEP = b"[" * 100_000 + b"]" * 100_000

# (stream, value, reason, model label) for each kind of hostile record.
HOSTILE_KINDS: list[tuple[str, bytes | None, str, str]] = [
    ("predictions", b'{"id": "h", "model": "churn", "prediction": ', "invalid_json", "__unknown__"),
    (
        "predictions",
        b'{"id": "h", "model": "churn", "prediction": NaN}',
        "non_finite",
        "__unknown__",
    ),
    (
        "predictions",
        b'{"id": "h", "model": "churn", "prediction": 1, "pad": "' + b"a" * (2 << 20) + b'"}',
        "too_large",
        "__unknown__",
    ),
    (
        "predictions",
        b'\xff\xfe{"id": "h", "model": "churn", "prediction": 1}',
        "invalid_utf8",
        "__unknown__",
    ),
    ("predictions", b'{"model": "churn", "prediction": 1}', "schema", "churn"),
    ("predictions", b'{"id": 42, "model": "fraud", "prediction": 1}', "schema", "fraud"),
    (
        "predictions",
        b'{"id": "h", "model": "churn", "prediction": Infinity}',
        "non_finite",
        "__unknown__",
    ),
    (
        "predictions",
        b'{"id": "h", "model": "churn", "prediction": 1, "x": ' + DEEP + b"}",
        "too_deep",
        "__unknown__",
    ),
    ("predictions", None, "empty", "__unknown__"),
    (
        "predictions",
        b'{"id": "h", "model": "bad model!", "prediction": 1}',
        "schema",
        "__unknown__",
    ),
    ("predictions", b"[1, 2, 3]", "schema", "__unknown__"),
    ("predictions", b'{"id": "h", "model": "churn", "prediction": 1e999}', "non_finite", "churn"),
    (
        "predictions",
        b'{"id": "h", "model": "churn", "prediction": 1, "features": {"a": {"b": 1}}}',
        "schema",
        "churn",
    ),
    (
        "predictions",
        b'{"id": "h", "model": "churn", "prediction": 1, "timestamp": "yesterday"}',
        "schema",
        "churn",
    ),
    ("outcomes", b'{"id": "h", "model": "churn"}', "schema", "churn"),
    ("outcomes", b"not json at all", "invalid_json", "__unknown__"),
    ("outcomes", b'{"id": "h", "model": "churn", "label": NaN}', "non_finite", "__unknown__"),
    ("signals", b'{"model": "churn", "value": 1}', "schema", "churn"),
    ("signals", b'{"model": "churn", "signal": "conversion", "value": "yes"}', "schema", "churn"),
    ("signals", b"", "empty", "__unknown__"),
]


def valid_events(rng: random.Random) -> list[tuple[str, bytes]]:
    events: list[tuple[str, bytes]] = []
    for i in range(2000):
        prediction = {
            "id": f"p-{i}",
            "model": MODELS[i % 3],
            "model_version": "v1",
            "timestamp": 1_763_790_000 + i,
            "features": {
                "tenure_days": rng.randint(0, 900),
                "plan": rng.choice(["free", "pro"]),
                "monthly_spend": round(rng.uniform(0, 100), 2),
                "coupon": None,
            },
            "prediction": rng.random(),
            "segment": {"region": rng.choice(["eu", "us"])},
        }
        events.append(("predictions", json.dumps(prediction).encode()))
    for i in range(300):
        outcome = {
            "id": f"p-{i}",
            "model": MODELS[i % 3],
            "label": rng.randint(0, 1),
            "timestamp": "2025-11-22T06:20:00Z",
        }
        events.append(("outcomes", json.dumps(outcome).encode()))
    for i in range(200):
        sig = {
            "id": f"p-{i}",
            "model": MODELS[i % 3],
            "signal": "conversion",
            "value": 1,
            "timestamp": 1_763_790_000 + i + 60,
        }
        events.append(("signals", json.dumps(sig).encode()))
    return events


@pytest.mark.parametrize("client", CLIENTS)
def test_daemon_counts_every_event_and_dead_letters_exactly_the_hostile_ones(
    kafka_bootstrap: str, topics: TopicSet, daemons: list[Daemon], tmp_path: Path, client: str
) -> None:
    rng = random.Random(7)
    hostile = [HOSTILE_KINDS[i % len(HOSTILE_KINDS)] for i in range(50)]
    records = valid_events(rng) + [(stream, value) for stream, value, _, _ in hostile]
    rng.shuffle(records)
    topic_of = {
        "predictions": topics.predictions,
        "outcomes": topics.outcomes,
        "signals": topics.signals,
    }
    produce(kafka_bootstrap, [(topic_of[s], v) for s, v in records])

    daemon = Daemon(kafka_bootstrap, topics, tmp_path, env={"DRIFTLINE_KAFKA__CLIENT": client})
    daemons.append(daemon.start())
    wait_for(lambda: daemon.events() >= 2550, 90, "all 2,550 events counted")

    assert daemon.events(stream="predictions", status="ok") == 2000
    assert daemon.events(stream="outcomes", status="ok") == 300
    # A signal read before its prediction (another topic) is "unmatched": the split
    # depends on the order the broker serves the topics in, the sum does not.
    signals_ok = daemon.events(stream="signals", status="ok")
    assert signals_ok + daemon.events(stream="signals", status="unmatched") == 200
    for model in MODELS:
        assert daemon.events(stream="predictions", status="ok", model=model) == 667 - (
            model == "ranker"
        )
    invalid = Counter((stream, model) for stream, _, _, model in hostile)
    for (stream, model), n in invalid.items():
        assert daemon.events(stream=stream, status="invalid", model=model) == n, (stream, model)
    assert daemon.events(status="invalid") == 50
    assert daemon.events() == 2550
    reasons = Counter(reason for _, _, reason, _ in hostile)
    for reason, n in reasons.items():
        assert daemon.value("driftline_dead_letters_total", reason=reason) == n, reason
    assert daemon.value("driftline_last_event_timestamp_seconds", stream="predictions") == (
        1_763_790_000 + 1999
    )

    letters = consume_all(kafka_bootstrap, topics.dead_letter, expected=50)
    assert len(letters) == 50
    source_topic = {v: k for k, v in topic_of.items()}
    got: Counter[tuple[str, bytes | None, str]] = Counter()
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        stream = source_topic[headers["driftline.source_topic"]]
        assert int(headers["driftline.source_offset"]) >= 0
        assert int(headers["driftline.source_partition"]) in (0, 1)
        assert headers["driftline.detail"]
        got[(stream, letter.value, headers["driftline.reason"])] += 1
    expected = Counter(
        (stream, value or (None if value is None else b""), reason)
        for stream, value, reason, _ in hostile
    )
    # Kafka gives an empty value back as b"" and a null value as None: both are kept as sent.
    assert got == expected


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("store", ["local", "none"])
def test_sigterm_stops_within_ten_seconds_and_a_restart_consumes_nothing_twice(
    kafka_bootstrap: str,
    topics: TopicSet,
    daemons: list[Daemon],
    tmp_path: Path,
    store: str,
    client: str,
) -> None:
    """With checkpoints the restart carries the counts on; without, it starts from 0.
    Either way no record is read twice and the group's offsets end at the end."""
    total = 30_000
    produce(
        kafka_bootstrap,
        [
            (
                topics.predictions,
                json.dumps({"id": f"p-{i}", "model": "churn", "prediction": i % 2}).encode(),
            )
            for i in range(total)
        ],
    )
    # Small batches make the first run slow enough to be stopped part-way.
    env = {"DRIFTLINE_STATE__STORE": store, "DRIFTLINE_KAFKA__CLIENT": client}
    slow = {**env, "DRIFTLINE_KAFKA__MAX_POLL_RECORDS": "100"}
    first = Daemon(kafka_bootstrap, topics, tmp_path, env=slow).start()
    daemons.append(first)
    wait_for(lambda: first.events() >= 1000, 60, "the first run to consume")
    assert first.terminate(timeout_s=10) == 0
    consumed = int(first.log().split("stopped: ", 1)[1].split(" events", 1)[0])
    assert 1000 <= consumed < total, "SIGTERM should arrive during consumption"
    assert committed_total(kafka_bootstrap, topics.group) == consumed

    carried = consumed if store == "local" else 0
    second = Daemon(kafka_bootstrap, topics, tmp_path, env=env).start()
    daemons.append(second)
    wait_for(lambda: second.events() >= total - consumed + carried, 60, "the second run")

    def lag_zero() -> bool:
        lags = {
            dict(labels)["partition"]: v
            for (name, labels), v in second.samples().items()
            if name == "driftline_consumer_lag" and dict(labels)["topic"] == topics.predictions
        }
        return set(lags) == {"0", "1"} and not any(lags.values())

    wait_for(lag_zero, 30, "consumer lag 0")
    assert second.events() == total - consumed + carried
    assert second.terminate(timeout_s=10) == 0
    assert committed_total(kafka_bootstrap, topics.group) == total


# Threads a daemon may have while it waits for the broker: the main thread, the HTTP
# server, one request handler, and those of the attempt in flight (kafka-python's client
# has one, librdkafka's consumer three and confluent-kafka's one). A failed attempt that
# left its threads behind would add as many each time.
MAX_THREADS = {"kafka-python": 5, "confluent": 7}


@pytest.mark.parametrize("client", CLIENTS)
def test_daemon_waits_for_a_broker_that_is_not_there_yet_then_consumes(
    daemons: list[Daemon], tmp_path: Path, client: str
) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topics = TopicSet()
    daemon = Daemon(
        bootstrap,
        topics,
        tmp_path,
        env={
            "DRIFTLINE_KAFKA__CONNECT_BACKOFF_INITIAL_S": "0.2",
            "DRIFTLINE_KAFKA__CONNECT_BACKOFF_MAX_S": "1",
            "DRIFTLINE_KAFKA__CLIENT": client,
        },
    ).start()
    daemons.append(daemon)
    wait_for(
        lambda: daemon.value("driftline_kafka_errors_total", kind="connect") >= 2,
        60,
        "two failed connection attempts",
    )
    assert daemon.process is not None
    wait_for(
        lambda: daemon.value("driftline_kafka_errors_total", kind="connect") >= 5,
        60,
        "five failed connection attempts",
    )
    # Failed attempts must not leave client threads behind.
    assert len(os.listdir(f"/proc/{daemon.process.pid}/task")) <= MAX_THREADS[client]
    assert daemon.get("/readyz")[0] == 503
    assert daemon.get("/healthz")[0] == 200
    assert daemon.process is not None and daemon.process.poll() is None

    with LocalBroker("127.0.0.1", port, log_file=tmp_path / "late-broker.log"):
        create_topics(bootstrap, topics.all())
        produce(
            bootstrap,
            [(topics.outcomes, b'{"id": "%d", "model": "m", "label": 1}' % i) for i in range(10)],
        )
        wait_for(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz to turn 200")
        wait_for(lambda: daemon.events(stream="outcomes", status="ok") == 10, 60, "10 outcomes")
        assert daemon.terminate() == 0


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ("kafka:\n  bootstrap_server: localhost:9092\n", "kafka.bootstrap_server"),
        ("http:\n  port: not-a-number\n", "http.port"),
        ("defaults:\n  window_size: -5\n", "defaults.window_size"),
    ],
)
def test_a_bad_config_fails_at_start_with_one_line_naming_the_key(
    tmp_path: Path, config: str, key: str
) -> None:
    path = tmp_path / "driftline.yaml"
    path.write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"driftline: config error: {key}:")
    assert str(path) in lines[0]


def test_sigint_also_stops_cleanly(
    kafka_bootstrap: str, topics: TopicSet, daemons: list[Daemon], tmp_path: Path
) -> None:
    daemon = Daemon(kafka_bootstrap, topics, tmp_path).start()
    daemons.append(daemon)
    wait_for(lambda: daemon.get("/readyz")[0] == 200, 60, "ready")
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(10) == 0


def test_run_with_local_broker_starts_tansu_creates_topics_and_consumes(
    daemons: list[Daemon], tmp_path: Path
) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topics = TopicSet()
    daemon = Daemon(bootstrap, topics, tmp_path, args=["--local-broker"]).start()
    daemons.append(daemon)
    wait_for(lambda: daemon.get("/readyz")[0] == 200, 60, "ready on the local broker")
    produce(bootstrap, [(topics.signals, b'{"model": "m", "signal": "click"}')] * 5)
    wait_for(lambda: daemon.events(stream="signals", status="ok") == 5, 60, "5 signals")
    assert daemon.terminate() == 0
    # The broker went down with the daemon.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
