"""Broker outages against real processes: the broker frozen with SIGSTOP mid-consumption.

Each test starts its own Tansu broker (the session's broker is shared and must not be
frozen), produces predictions with their outcomes, starts the daemon, and freezes the
broker with SIGSTOP as soon as the daemon has counted its first events. While the
broker is frozen the test probes ``/metrics``, ``/readyz`` and ``/healthz`` once a
second; after SIGCONT it waits for the daemon to count every event, and then checks
that none was lost or counted twice. The time to recover is printed and recorded in
``benchmarks/RESULTS-faults.md`` by hand.

A frozen broker keeps its TCP connections open but answers nothing, so the client sees
requests time out rather than connections refused: the harder case for a client.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from driftline_scenarios import error_stream
from driftline_testing import (
    CLIENTS,
    SESSION_TIMEOUT_MS,
    Daemon,
    TopicSet,
    committed_total,
    create_topics,
    produce,
    series,
    wait_for,
)
from monitor.local_broker import LocalBroker, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# Per model: predictions, each with its outcome (50,000 events in all; 160,000 for
# librdkafka). Enough that the consumer cannot have fetched them all before the freeze
# (kafka-python buffers about 1 MiB per partition, librdkafka fetches 4 MiB ahead), so
# the daemon needs the broker back to finish.
PAIRS = {"kafka-python": 12_500, "confluent": 40_000}
MODELS = ("churn", "fraud")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own, since it is going to be frozen."""
    own = LocalBroker("127.0.0.1", free_port(), log_file=tmp_path / "tansu.log").start()
    try:
        yield own
    finally:
        pid = own.pid
        if pid is not None:  # a failed test may leave it stopped: SIGTERM needs it running
            os.kill(pid, signal.SIGCONT)
        own.stop()


@dataclass
class OutageProbe:
    """What the daemon's endpoints answered while the broker was frozen."""

    metrics: list[int] = field(default_factory=list)  # HTTP status of each /metrics
    ready: list[int] = field(default_factory=list)
    healthy: list[int] = field(default_factory=list)
    events: list[float] = field(default_factory=list)  # events counted at each probe
    seconds_to_not_ready: float | None = None


def counted(daemon: Daemon) -> float:
    return daemon.events()


def probe_during(daemon: Daemon, seconds: float) -> OutageProbe:
    """Probe the daemon's endpoints once a second for ``seconds`` (the outage itself)."""
    probe = OutageProbe()
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        tick = time.monotonic()
        assert daemon.process is not None and daemon.process.poll() is None, (
            f"the daemon exited during the outage:\n{daemon.log()[-3000:]}"
        )
        status, body = daemon.get("/metrics")
        probe.metrics.append(status)
        if status == 200:
            probe.events.append(counted(daemon))
        ready = daemon.get("/readyz")[0]
        probe.ready.append(ready)
        probe.healthy.append(daemon.get("/healthz")[0])
        if ready != 200 and probe.seconds_to_not_ready is None:
            probe.seconds_to_not_ready = time.monotonic() - start
        # Pace the probes (this waits for the clock, not for the daemon).
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    return probe


@dataclass(frozen=True)
class Recovery:
    events: int  # produced, and counted in the end
    counted_at_stop: float
    counted_at_resume: float
    first_progress_s: float  # after SIGCONT, until the count moved
    all_counted_s: float  # after SIGCONT, until every event was counted
    ready_s: float  # after SIGCONT, until /readyz answered 200 again


def run_outage(
    broker: LocalBroker,
    daemons: list[Daemon],
    tmp_path: Path,
    outage_s: float,
    client: str = "kafka-python",
) -> tuple[OutageProbe, Recovery, Daemon]:
    bootstrap = broker.bootstrap_servers
    topics = TopicSet()
    create_topics(bootstrap, [topics.predictions, topics.outcomes], partitions=2)
    create_topics(bootstrap, [topics.signals, topics.dead_letter, topics.alerts])
    pairs = [
        pair
        for index, model in enumerate(MODELS)
        for pair in error_stream(model, PAIRS[client], 0, 0.1, 0.1, seed=60 + index)
    ]
    records = [(topics.predictions, json.dumps(p).encode()) for p, _ in pairs] + [
        (topics.outcomes, json.dumps(o).encode()) for _, o in pairs
    ]
    # Keyed by model, as DESIGN.md asks: a model's predictions and outcomes co-partition.
    produce(bootstrap, records, key=lambda v: json.loads(v or b"{}")["model"].encode())
    total = len(records)

    # Small batches: the daemon is still consuming when the broker freezes.
    env = {"DRIFTLINE_KAFKA__MAX_POLL_RECORDS": "200", "DRIFTLINE_KAFKA__CLIENT": client}
    daemon = Daemon(bootstrap, topics, tmp_path, env=env)
    daemons.append(daemon.start())
    wait_for(lambda: counted(daemon) > 0, 60, "the daemon's first events")
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    stopped_at = counted(daemon)
    try:
        probe = probe_during(daemon, outage_s)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    resumed = time.monotonic()
    at_resume = counted(daemon)
    assert at_resume < total, "the outage should interrupt consumption, not follow it"

    first_progress: list[float] = []
    ready_again: list[float] = []

    def ready() -> bool:
        if not ready_again and daemon.get("/readyz")[0] == 200:
            ready_again.append(time.monotonic() - resumed)
        return bool(ready_again)

    def all_counted() -> bool:
        ready()
        n = counted(daemon)
        if n > at_resume and not first_progress:
            first_progress.append(time.monotonic() - resumed)
        return n >= total

    wait_for(all_counted, 240, f"all {total} events counted after the outage")
    recovered_s = time.monotonic() - resumed
    wait_for(ready, 60, "/readyz to turn 200 again")
    ready_s = ready_again[0]
    # Every offset committed: nothing is left to be read again by this consumer group.
    wait_for(lambda: committed_total(bootstrap, topics.group) == total, 60, "offsets all committed")
    errors = series(daemon.samples(), "driftline_kafka_errors_total", "kind")
    figures = Recovery(total, stopped_at, at_resume, first_progress[0], recovered_s, ready_s)
    print(
        f"\noutage {outage_s:.0f} s ({client}): {figures}; not ready "
        f"{probe.seconds_to_not_ready} s into the outage; /readyz {probe.ready}; "
        f"/healthz {probe.healthy}; kafka errors {errors}"
    )
    return probe, figures, daemon


def joined(daemon: Daemon) -> float:
    return sum(daemon.value("driftline_joins_total", model=m, result="joined") for m in MODELS)


def assert_counted_exactly_once(daemon: Daemon, pairs: int) -> None:
    # The per-model families are published from snapshots refreshed once a second.
    wait_for(lambda: joined(daemon) >= len(MODELS) * pairs, 30, "every outcome joined")
    got = daemon.samples()
    for model in MODELS:
        for stream in ("predictions", "outcomes"):
            statuses = series(got, "driftline_events_total", "status", stream=stream, model=model)
            assert statuses == {"ok": pairs}, (stream, model, statuses)
        joins = series(got, "driftline_joins_total", "result", model=model)
        assert joins == {"joined": pairs, "expired": 0, "unmatched": 0, "unusable": 0}, joins
    assert daemon.process is not None and daemon.process.poll() is None


def assert_served_then_not_ready(probe: OutageProbe) -> None:
    """/metrics and /healthz answered at every probe; /readyz turned 503 once the session
    timeout passed without a heartbeat response (kafka-python notices nothing sooner)."""
    assert probe.metrics and set(probe.metrics) == {200}, probe.metrics
    assert set(probe.healthy) == {200}, probe.healthy
    assert probe.seconds_to_not_ready is not None, probe.ready
    # Session timeout, plus a heartbeat interval, plus one bounded commit in the loop.
    assert probe.seconds_to_not_ready <= 2 * SESSION_TIMEOUT_MS / 1000 + 3, probe.ready
    # Once not ready, not ready until the broker is back.
    first = probe.ready.index(503)
    assert set(probe.ready[first:]) == {503}, probe.ready


@pytest.mark.parametrize("client", CLIENTS)
def test_a_20_second_broker_freeze_loses_nothing_and_counts_nothing_twice(
    broker: LocalBroker, daemons: list[Daemon], tmp_path: Path, client: str
) -> None:
    probe, figures, daemon = run_outage(broker, daemons, tmp_path, 20, client)
    assert_served_then_not_ready(probe)
    assert_counted_exactly_once(daemon, PAIRS[client])


def test_a_90_second_broker_freeze_loses_nothing_and_counts_nothing_twice(
    broker: LocalBroker, daemons: list[Daemon], tmp_path: Path
) -> None:
    probe, figures, daemon = run_outage(broker, daemons, tmp_path, 90)
    assert_served_then_not_ready(probe)
    assert_counted_exactly_once(daemon, PAIRS["kafka-python"])
