"""Checkpoints written on the writer thread: the loop goes on meanwhile, offsets are
committed on the loop thread once the state is durable, shutdown and revocation wait.

Writes are held back by a :class:`threading.Event` (the gate) that the test opens;
what the loop did while a write was held is recorded at each poll and checked after.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest

from driftline_testing import wait_for
from monitor.checkpoint import CheckpointError, CheckpointText, LocalStore, decode
from monitor.checkpoint_writer import CheckpointWriter, Part
from monitor.config import Settings
from monitor.service import Service
from monitor.source import MemoryRecord, MemorySource, Record
from monitor.telemetry import Telemetry

TOPIC = "predictions"
GATE_TIMEOUT_S = 30.0  # a safety net against a hung test, not synchronisation
WRITER = "driftline-checkpoint-writer"


def records(n: int) -> list[MemoryRecord]:
    out = []
    for i in range(n):
        value = {"id": f"p-{i}", "model": "churn", "timestamp": 1_700_000_000 + i}
        value |= {"features": {"x": i % 7}, "prediction": (i % 10) / 10}
        out.append(MemoryRecord(TOPIC, i % 2, i // 2, json.dumps(value).encode()))
    return out


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class GatedStore(LocalStore):
    """A local store whose writes wait for :attr:`gate`; the ones in ``failing`` fail."""

    def __init__(self, directory: Path, failing: Iterable[int] = ()) -> None:
        super().__init__(directory)
        self.gate = threading.Event()
        self.failing = set(failing)  # numbers of the writes that fail (1 is the first)
        self.log: list[tuple[str, int, str]] = []  # (what, write number, thread name)
        self.offsets: list[dict[tuple[str, int], int]] = []  # of each checkpoint written

    def write(self, checkpoint: CheckpointText) -> int:
        number = sum(what == "began" for what, _, _ in self.log) + 1
        self.log.append(("began", number, threading.current_thread().name))
        if not self.gate.wait(GATE_TIMEOUT_S):
            raise AssertionError("the test never opened the gate")
        if number in self.failing:
            self.log.append(("failed", number, threading.current_thread().name))
            raise CheckpointError("write", "disk full")
        size = super().write(checkpoint)
        offsets = json.loads(checkpoint.text)["offsets"]
        self.offsets.append({(t, p): o for t, p, o in offsets})
        self.log.append(("written", number, threading.current_thread().name))
        return size

    def written(self) -> int:
        return sum(what == "written" for what, _, _ in self.log)

    def newest_offsets(self) -> Mapping[tuple[str, int], int]:
        return decode(self.files()[0][1].read_bytes()).offsets


class ScriptedSource(MemorySource):
    """Serves batches; calls ``hooks[n]`` at the ``n``-th poll (from 1), moves the clock
    on by ``step_s`` at every poll, and records commits with the thread they came from
    and how many writes were done by then."""

    def __init__(
        self,
        data: list[MemoryRecord],
        clock: FakeClock,
        store: GatedStore,
        step_s: float = 5.0,
    ) -> None:
        super().__init__(data)
        self.clock, self.store, self.step_s = clock, store, step_s
        self.hooks: dict[int, Callable[[], None]] = {}
        self.polls = 0
        self.commits: list[tuple[dict[tuple[str, int], int], str, int]] = []

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        self.polls += 1
        self.clock.now += self.step_s
        hook = self.hooks.get(self.polls)
        if hook is not None:
            hook()
        return super().poll(timeout_ms, max_records)

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        self.commits.append((dict(offsets), threading.current_thread().name, self.store.written()))
        return super().commit(offsets)


def setup(
    tmp_path: Path, n: int = 1000, failing: Iterable[int] = (), **http: object
) -> tuple[Service, ScriptedSource, GatedStore, Telemetry]:
    """A service that polls batches of 100 and has a checkpoint due every 10 s, while
    each poll moves its clock on by 5 s: the first checkpoint begins after poll 2."""
    settings = Settings.model_validate(
        {
            "kafka": {"max_poll_records": 100},
            "state": {"checkpoint_interval_s": 10.0},
            "http": http,
            "defaults": {"reference_size": 100, "window_size": 50},
        }
    )
    clock = FakeClock()
    store = GatedStore(tmp_path, failing)
    source = ScriptedSource(records(n), clock, store)
    telemetry = Telemetry()
    service = Service(
        settings, telemetry, lambda stop, beat: source, clock=clock, store=store, wall=clock
    )
    return service, source, store, telemetry


def writers_alive() -> int:
    return sum(t.name == WRITER and t.is_alive() for t in threading.enumerate())


def test_the_loop_goes_on_while_a_checkpoint_is_written_and_commits_once_it_is_durable(
    tmp_path: Path,
) -> None:
    service, source, store, telemetry = setup(tmp_path)
    seen: list[tuple[int, int, bool, int]] = []  # events counted, commits, busy, writers

    def observe() -> None:
        seen.append(
            (telemetry.event_count(), len(source.commits), store.written() == 0, writers_alive())
        )

    def release() -> None:
        observe()
        store.gate.set()
        wait_for(lambda: store.written() == 1, 10, "the first write")

    source.hooks = {3: observe, 4: observe, 5: observe, 6: release}
    loop = threading.current_thread().name
    service.run(threading.Event(), max_batches=8)

    # Polls 3 to 6 came while the first write (begun after poll 2) was held: batches
    # were counted all the while, nothing was committed, and no second write began
    # though checkpoints were due at polls 4 and 6.
    assert seen == [(200, 0, True, 1), (300, 0, True, 1), (400, 0, True, 1), (500, 0, True, 1)]
    first = {(TOPIC, 0): 100, (TOPIC, 1): 100}  # what batches 1 and 2 hold
    assert store.offsets[0] == first
    # The first commit is that checkpoint's offsets, after it was written, on the loop.
    assert source.commits[0] == (first, loop, 1)
    assert {thread for _, thread, _ in source.commits} == {loop}
    assert {thread for _, _, thread in store.log} == {WRITER}
    # The final checkpoint covers every batch and is committed.
    assert store.newest_offsets() == source.committed == {(TOPIC, 0): 400, (TOPIC, 1): 400}
    assert telemetry.snapshot().checkpoints == store.written() == 3


def test_shutdown_waits_for_the_write_in_flight_and_then_writes_the_final_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, source, store, telemetry = setup(tmp_path)
    waiting = threading.Event()
    original = CheckpointWriter.wait

    def wait(writer: CheckpointWriter) -> object:
        waiting.set()
        return original(writer)

    monkeypatch.setattr(CheckpointWriter, "wait", wait)
    returned = threading.Event()

    def run() -> None:
        service.run(threading.Event(), max_batches=3)  # the first write begins after 2
        returned.set()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(waiting.is_set, 10, "the final checkpoint to wait for the write")
        # The gate is shut: the write cannot have finished, nor can the run.
        assert not returned.is_set() and not source.closed and store.written() == 0
    finally:
        store.gate.set()
        thread.join(GATE_TIMEOUT_S)
    assert returned.is_set() and source.closed
    assert [what for what, _, _ in store.log] == ["began", "written", "began", "written"]
    assert store.newest_offsets() == source.committed == {(TOPIC, 0): 150, (TOPIC, 1): 150}
    assert telemetry.snapshot().checkpoints == 2


def test_a_failed_write_commits_nothing_is_counted_and_the_next_checkpoint_covers_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service, source, store, telemetry = setup(tmp_path, failing=[1])
    stop = threading.Event()
    for _ in range(2):
        service.process_batch(source, source.poll(0, 100), stop)
    assert service.begin_checkpoint(source)
    assert service.collect_checkpoint(source) is None  # held at the gate
    store.gate.set()
    assert service.collect_checkpoint(source, wait=True) is False
    assert source.commits == [] and store.files() == []
    assert telemetry.snapshot().checkpoint_failures == {"write": 1}
    assert [r.levelname for r in caplog.records if "cannot write" in r.message] == ["ERROR"]

    service.process_batch(source, source.poll(0, 100), stop)
    assert service.begin_checkpoint(source)
    assert service.collect_checkpoint(source, wait=True) is True
    # Same number as the failed one, and every position it was to cover, and more.
    assert [s for s, _ in store.files()] == [1]
    assert store.newest_offsets() == source.committed == {(TOPIC, 0): 150, (TOPIC, 1): 150}
    assert telemetry.snapshot().checkpoints == 1


def test_a_failed_write_in_the_loop_commits_nothing_and_a_later_one_covers_its_positions(
    tmp_path: Path,
) -> None:
    service, source, store, telemetry = setup(tmp_path, failing=[1])
    store.gate.set()
    service.run(threading.Event(), max_batches=5)  # the first write begins after poll 2
    assert [what for what, _, _ in store.log][:2] == ["began", "failed"]
    # Commits only ever follow a written checkpoint, and cover what the failed one held.
    offsets, _, written = source.commits[0]
    assert written >= 1 and offsets[(TOPIC, 0)] >= 100 and offsets[(TOPIC, 1)] >= 100
    assert store.newest_offsets() == source.committed == {(TOPIC, 0): 250, (TOPIC, 1): 250}
    assert telemetry.snapshot().checkpoint_failures == {"write": 1}


def test_a_revocation_takes_up_the_write_in_flight_and_saves_the_state_before_returning(
    tmp_path: Path,
) -> None:
    service, source, store, _ = setup(tmp_path)
    after: list[tuple[Mapping[tuple[str, int], int], dict[tuple[str, int], int], int]] = []

    def revoke() -> None:  # the consumer calls it inside poll, on the loop thread
        store.gate.set()
        service.on_revoked([(TOPIC, 0), (TOPIC, 1)])
        after.append((store.newest_offsets(), dict(source.committed), store.written()))

    source.hooks = {4: revoke}  # the first write (after poll 2) was held until now
    service.run(threading.Event(), max_batches=4)
    # Both writes done, the second with the state of batches 1 to 3, nothing committed
    # from inside the rebalance; the final checkpoint commits.
    assert after == [({(TOPIC, 0): 150, (TOPIC, 1): 150}, {}, 2)]
    assert [offsets for offsets, _, _ in source.commits] == [{(TOPIC, 0): 200, (TOPIC, 1): 200}]


def test_a_checkpoint_stuck_in_writing_makes_the_daemon_unhealthy(tmp_path: Path) -> None:
    service, source, store, _ = setup(tmp_path, stall_after_s=12.0)
    healthy: list[bool] = []

    def observe() -> None:
        healthy.append(service.healthy())

    def release() -> None:
        observe()
        store.gate.set()
        wait_for(lambda: store.written() == 1, 10, "the first write")

    source.hooks = {3: observe, 4: observe, 5: observe, 6: release, 7: observe}
    service.run(threading.Event(), max_batches=7)
    # The write begun after poll 2 is 5, 10, 15 and 20 s old at polls 3 to 6, while
    # the loop itself goes on; the next one, begun after poll 6, is 5 s old at poll 7.
    assert healthy == [True, True, False, False, True]


class MemoryShardStore:
    """Shard checkpoints in a dict; saving the shards in ``failing`` fails."""

    def __init__(self, failing: Iterable[int] = ()) -> None:
        self.saved: dict[int, bytes] = {}
        self.failing = set(failing)
        self.threads: list[str] = []

    def save(self, shard: int, data: bytes) -> None:
        self.threads.append(threading.current_thread().name)
        if shard in self.failing:
            raise CheckpointError("write", "state topic unavailable")
        self.saved[shard] = data

    def load(self, shards: Iterable[int]) -> dict[int, bytes]:
        return {s: self.saved[s] for s in shards if s in self.saved}

    def close(self) -> None:
        pass


def test_shard_checkpoints_are_written_by_the_writer_and_committed_shard_by_shard(
    tmp_path: Path,
) -> None:
    service, source, _, telemetry = setup(tmp_path)
    store = MemoryShardStore(failing=[1])
    service = Service(
        Settings.model_validate({"defaults": {"reference_size": 100, "window_size": 50}}),
        telemetry,
        lambda stop, beat: source,
        store=store,
    )
    stop = threading.Event()
    for _ in range(2):
        service.process_batch(source, source.poll(0, 100), stop)
    assert service.begin_checkpoint(source)
    assert service.collect_checkpoint(source, wait=True) is False
    assert source.committed == {(TOPIC, 0): 100}  # shard 1 is not durable
    assert decode(store.saved[0]).offsets == {(TOPIC, 0): 100}
    assert telemetry.snapshot().checkpoint_failures == {"write": 1}

    store.failing.clear()
    assert service.checkpoint(source)  # only shard 1 moved since
    assert decode(store.saved[1]).offsets == {(TOPIC, 1): 100}
    assert decode(store.saved[1]).sequence == 2
    assert source.committed == {(TOPIC, 0): 100, (TOPIC, 1): 100}
    assert store.threads == [WRITER] * 3


def test_a_bug_in_the_writer_is_raised_on_the_thread_that_takes_the_outcome(
    tmp_path: Path,
) -> None:
    class Broken(LocalStore):
        def write(self, checkpoint: CheckpointText) -> int:
            raise ZeroDivisionError("a bug")

    writer = CheckpointWriter(Broken(tmp_path))
    writer.start([Part(None, CheckpointText(1, (b"{}",), ()), {}, 0.0)], now=0.0)
    with pytest.raises(ZeroDivisionError):
        writer.wait()
    assert not writer.busy


def test_a_second_write_cannot_start_while_one_is_in_flight(tmp_path: Path) -> None:
    store = GatedStore(tmp_path)
    writer = CheckpointWriter(store)
    part = Part(None, CheckpointText(1, (b'{"offsets":[]}',), ()), {(TOPIC, 0): 1}, 0.0)
    writer.start([part], now=5.0)
    assert writer.busy and writer.started_at == 5.0 and writer.take() is None
    with pytest.raises(RuntimeError):
        writer.start([part], now=6.0)
    store.gate.set()
    outcomes = wait_for(writer.take, 10, "the write")
    assert outcomes[0][0] is part and isinstance(outcomes[0][1], int)
    assert not writer.busy and writer.take() is None and writer.started_at is None


def test_an_assignment_takes_up_the_write_in_flight_and_leaves_its_commit_for_later(
    tmp_path: Path,
) -> None:
    service, source, store, telemetry = setup(tmp_path)
    stop = threading.Event()
    for _ in range(2):
        service.process_batch(source, source.poll(0, 100), stop)
    assert service.begin_checkpoint(source)
    store.gate.set()
    service.on_assigned([(TOPIC, 0), (TOPIC, 1)])  # inside poll: no commit from here
    assert telemetry.snapshot().checkpoints == 1 and source.commits == []
    assert service.checkpoint(source)  # nothing moved since: only the commit is due
    assert store.written() == 1
    assert source.committed == {(TOPIC, 0): 100, (TOPIC, 1): 100}
