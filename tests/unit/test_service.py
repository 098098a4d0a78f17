"""The service loop over an in-memory source: counts, dead letters, commits, caps, health."""

from __future__ import annotations

import threading

from monitor.config import Settings, load_settings
from monitor.service import Service
from monitor.source import EventSource, MemoryRecord, MemorySource
from monitor.telemetry import OTHER, UNKNOWN, Telemetry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def prediction(model: str, i: int = 0) -> bytes:
    return (
        f'{{"id": "p-{i}", "model": "{model}", "prediction": 0.5, "timestamp": {100 + i}}}'.encode()
    )


def make_service(
    source: MemorySource, settings: Settings | None = None, clock: FakeClock | None = None
) -> tuple[Service, Telemetry]:
    telemetry = Telemetry()
    settings = settings or load_settings(
        environ={
            "DRIFTLINE_KAFKA__CONNECT_BACKOFF_INITIAL_S": "0.001",
            "DRIFTLINE_KAFKA__CONNECT_BACKOFF_MAX_S": "0.001",
        }
    )

    def connect(stop: threading.Event, beat: object) -> EventSource:
        return source

    return Service(settings, telemetry, connect, clock=clock or FakeClock()), telemetry


def test_valid_and_invalid_events_are_counted_per_stream_model_and_status() -> None:
    source = MemorySource(
        [
            MemoryRecord("predictions", 0, 0, prediction("churn", 0)),
            MemoryRecord("predictions", 1, 0, prediction("fraud", 1)),
            MemoryRecord("predictions", 0, 1, b"{oops"),
            MemoryRecord("outcomes", 0, 0, b'{"id": "p-0", "model": "churn", "label": 1}'),
            MemoryRecord("outcomes", 0, 1, b'{"id": "p-0", "model": "churn"}'),
            MemoryRecord("signals", 0, 0, b'{"model": "churn", "signal": "conversion"}'),
        ]
    )
    service, telemetry = make_service(source)
    summary = service.run(threading.Event(), max_batches=1)
    events = telemetry.snapshot().events
    assert events == {
        ("predictions", "churn", "ok"): 1,
        ("predictions", "fraud", "ok"): 1,
        ("predictions", UNKNOWN, "invalid"): 1,
        ("outcomes", "churn", "ok"): 1,
        ("outcomes", "churn", "invalid"): 1,
        ("signals", "churn", "ok"): 1,
    }
    assert (summary.events, summary.invalid) == (6, 2)
    assert source.closed


def test_invalid_records_become_dead_letters_with_their_coordinates() -> None:
    bad = MemoryRecord("predictions", 3, 41, b"[]", key=b"k", headers=[("trace", b"1")])
    source = MemorySource([bad])
    service, telemetry = make_service(source)
    service.run(threading.Event(), max_batches=1)
    [letter] = source.dead_letters
    assert letter.record is bad
    assert letter.reason == "schema"
    assert dict(letter.headers())["source_offset"] == "41"
    assert dict(letter.headers())["source_partition"] == "3"
    assert telemetry.snapshot().dead_letters == {"schema": 1}


def test_offsets_committed_are_the_next_offset_of_each_partition() -> None:
    source = MemorySource(
        [MemoryRecord("predictions", p, o, prediction("m", o)) for o in range(5) for p in (0, 1)]
        + [MemoryRecord("outcomes", 0, 7, b"bad")]
    )
    service, _ = make_service(source)
    service.run(threading.Event(), max_batches=1)
    assert source.committed == {("predictions", 0): 5, ("predictions", 1): 5, ("outcomes", 0): 8}


def test_dead_letters_are_retried_until_the_topic_takes_them() -> None:
    source = MemorySource([MemoryRecord("signals", 0, 0, b"nope")], fail_dead_letters=3)
    service, telemetry = make_service(source)
    service.run(threading.Event(), max_batches=1)
    assert len(source.dead_letters) == 1
    assert source.committed == {("signals", 0): 1}
    assert telemetry.event_count(status="invalid") == 1


def test_a_batch_whose_dead_letters_cannot_be_delivered_is_neither_counted_nor_committed() -> None:
    source = MemorySource(
        [
            MemoryRecord("predictions", 0, 0, prediction("m")),
            MemoryRecord("predictions", 0, 1, b"nope"),
        ],
        fail_dead_letters=10**9,
    )
    service, telemetry = make_service(source)
    stop = threading.Event()
    stop.set()  # stopping while the dead-letter topic is down
    stats = service.process_batch(source, source.poll(0, 10), stop)
    assert stats is None
    assert source.committed == {}
    assert telemetry.event_count() == 0


def test_models_beyond_the_cap_are_counted_as_other() -> None:
    settings = load_settings(environ={"DRIFTLINE_LIMITS__MAX_MODELS": "2"})
    source = MemorySource(
        [MemoryRecord("predictions", 0, i, prediction(f"m{i}", i)) for i in range(5)]
    )
    service, telemetry = make_service(source, settings)
    service.run(threading.Event(), max_batches=1)
    snap = telemetry.snapshot()
    assert snap.events == {
        ("predictions", "m0", "ok"): 1,
        ("predictions", "m1", "ok"): 1,
        ("predictions", OTHER, "ok"): 3,
    }
    assert snap.label_overflow == {"model": 3}


def test_configured_models_are_admitted_before_the_ones_seen_first() -> None:
    settings = load_settings(
        environ={"DRIFTLINE_LIMITS__MAX_MODELS": "1", "DRIFTLINE_MODELS__CHURN__TASK": "binary"}
    )
    source = MemorySource(
        [
            MemoryRecord("predictions", 0, 0, prediction("other")),
            MemoryRecord("predictions", 0, 1, prediction("churn")),
        ]
    )
    service, telemetry = make_service(source, settings)
    service.run(threading.Event(), max_batches=1)
    assert telemetry.snapshot().events == {
        ("predictions", OTHER, "ok"): 1,
        ("predictions", "churn", "ok"): 1,
    }


def test_last_event_time_uses_the_event_timestamp_or_else_the_record_time() -> None:
    source = MemorySource(
        [
            MemoryRecord("predictions", 0, 0, prediction("m", 5)),  # event time 105
            MemoryRecord(
                "outcomes", 0, 0, b'{"id": "a", "model": "m", "label": 0}', timestamp=7_500
            ),
        ]
    )
    service, telemetry = make_service(source)
    service.run(threading.Event(), max_batches=1)
    assert telemetry.snapshot().last_event_timestamp == {"predictions": 105.0, "outcomes": 7.5}


def test_health_turns_false_when_the_loop_stalls_and_readiness_follows_the_source() -> None:
    clock = FakeClock()
    source = MemorySource([MemoryRecord("predictions", 0, 0, prediction("m"))])
    service, telemetry = make_service(source, clock=clock)
    assert service.healthy() and not service.ready()
    clock.now += 61
    assert not service.healthy()
    service.run(threading.Event(), max_batches=1)
    assert service.healthy()
    assert not service.ready()  # the run is over: not connected any more


def test_a_stop_before_connecting_returns_without_touching_the_source() -> None:
    telemetry = Telemetry()
    service = Service(Settings(), telemetry, lambda stop, beat: None)
    summary = service.run(threading.Event())
    assert summary.events == 0


def test_the_daemon_freezes_what_it_built_and_collects_young_objects_less_often() -> None:
    import subprocess
    import sys

    code = (
        "import gc; from monitor.daemon import GC_THRESHOLD, tune_gc; "
        "before = gc.get_threshold(); tune_gc(); "
        "print(before[0], gc.get_threshold()[0] == GC_THRESHOLD > before[0], "
        "gc.get_freeze_count() > 1000)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["700", "True", "True"]


def test_records_of_partitions_interleaved_are_counted_by_their_own_partition() -> None:
    # Runs of one partition are looked up once per run: here every run is one record
    # long, and the runs of each partition come back after those of the others.
    records = [
        MemoryRecord("predictions", p, o, prediction("m", 10 * p + o))
        for o in range(3)
        for p in (0, 1)
    ] + [
        MemoryRecord("outcomes", 1, 0, b'{"id": "p-11", "model": "m", "label": 1}'),
        MemoryRecord("predictions", 0, 3, b"bad"),
        MemoryRecord("outcomes", 1, 1, b'{"id": "p-0", "model": "m", "label": 0}'),
    ]
    service, telemetry = make_service(MemorySource(records))
    service.run(threading.Event(), max_batches=1)
    shard0, shard1 = telemetry.shard_state(0), telemetry.shard_state(1)
    counts = [{tuple(key): n for *key, n in shard["events"]} for shard in (shard0, shard1)]
    assert counts[0] == {("predictions", "m", "ok"): 3, ("predictions", UNKNOWN, "invalid"): 1}
    assert counts[1] == {("predictions", "m", "ok"): 3, ("outcomes", "m", "ok"): 2}
    assert shard0["last_event_timestamp"] == {"predictions": 102.0}  # p-2: 100 + 2
    assert shard1["last_event_timestamp"]["predictions"] == 112.0  # p-12
    assert service.positions() == {("predictions", 0): 4, ("predictions", 1): 3, ("outcomes", 1): 2}
