"""Checkpoint files and the service's use of them: atomic, checksummed, the last two
kept, damaged ones passed over, offsets committed only behind durable state."""

from __future__ import annotations

import gzip
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from monitor.checkpoint import (
    Checkpoint,
    CheckpointError,
    Finite,
    LocalStore,
    decode,
    encode,
    release_free_memory,
)
from monitor.config import Settings
from monitor.service import Service
from monitor.source import MemoryRecord, MemorySource
from monitor.telemetry import Telemetry

TOPIC = "predictions"


def checkpoint(sequence: int, offset: int = 10) -> Checkpoint:
    return Checkpoint(
        sequence=sequence,
        created_at=1_700_000_000.0 + sequence,
        offsets={(TOPIC, 0): offset, (TOPIC, 1): offset + 1},
        state={"x": [1.5, float("nan"), None], "n": sequence},
        group_id="g",
        meta={"group_id": "g"},
    )


def test_a_checkpoint_reads_back_as_written() -> None:
    back = decode(encode(checkpoint(7)))
    assert (back.sequence, back.offsets, back.group_id, back.meta) == (
        7,
        {(TOPIC, 0): 10, (TOPIC, 1): 11},
        "g",
        {"group_id": "g"},
    )
    assert back.state["n"] == 7 and back.state["x"][0] == 1.5 and back.state["x"][1] != 1.0


def test_finite_parts_read_back_as_the_json_module_would_write_them() -> None:
    entries = [["m\x00p-1", ["m", 0.1 + 0.2, "", ["eu", "é"]], 1e-7, True], ["k", [1, "x"], 3]]
    outcomes = [["m\x00q", ["m", False], 2.5]]
    lookalike = "0123456789abcdef0123456789abcdef-0"  # the shape of a placeholder
    plain = {"join": {"predictions": entries, "outcomes": outcomes}, "x": [float("nan"), lookalike]}
    marked = {
        "join": {"predictions": Finite(entries), "outcomes": Finite(outcomes)},
        "x": [float("nan"), lookalike],
    }
    base = checkpoint(3)
    back = decode(encode(Checkpoint(3, 1.0, base.offsets, marked, "g", {"group_id": "g"})))
    want = json.loads(json.dumps(plain))
    assert back.state["join"] == want["join"]
    assert back.state["x"][1] == lookalike and back.state["x"][0] != back.state["x"][0]  # NaN


def test_the_store_keeps_the_last_two_private_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "state")
    for sequence in (1, 2, 3):
        assert store.save(checkpoint(sequence)) > 0
    assert [s for s, _ in store.files()] == [3, 2]
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for _, path in store.files():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in (tmp_path / "state").iterdir() if p.name.endswith(".tmp")]
    report = store.load()
    assert report.checkpoint is not None and report.checkpoint.sequence == 3
    assert report.failures == []


def damage_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def damage_body(path: Path) -> None:
    """A valid gzip stream whose body no longer matches its checksum."""
    text = gzip.decompress(path.read_bytes()).replace(b'"n":2', b'"n":9')
    path.write_bytes(gzip.compress(text))


@pytest.mark.parametrize("damage", [damage_truncate, damage_flip, damage_body])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(
    tmp_path: Path, damage: object
) -> None:
    store = LocalStore(tmp_path)
    store.save(checkpoint(1))
    store.save(checkpoint(2))
    newest = store.files()[0][1]
    damage(newest)  # type: ignore[operator]
    report = store.load()
    assert report.checkpoint is not None and report.checkpoint.sequence == 1
    assert [(p, e.kind) for p, e in report.failures] == [(newest, "corrupt")]
    # Set aside for inspection, never read again.
    assert not newest.exists() and newest.with_name(newest.name + ".damaged").exists()
    assert store.load().failures == []


def test_every_checkpoint_damaged_means_none(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.save(checkpoint(1))
    store.save(checkpoint(2))
    for _, path in store.files():
        damage_truncate(path)
    report = store.load()
    assert report.checkpoint is None and len(report.failures) == 2


def test_a_foreign_format_version_is_incompatible() -> None:
    data = gzip.decompress(encode(checkpoint(1))).replace(b"checkpoint 1 ", b"checkpoint 9 ", 1)
    with pytest.raises(CheckpointError) as caught:
        decode(gzip.compress(data))
    assert caught.value.kind == "incompatible"


def test_an_unwritable_directory_is_a_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointError) as caught:
        LocalStore(blocker / "state").save(checkpoint(1))
    assert caught.value.kind == "write"


# -- the service --------------------------------------------------------------------


def records(n: int, start: int = 0) -> list[MemoryRecord]:
    out = []
    for i in range(start, start + n):
        value = {"id": f"p-{i}", "model": "churn", "timestamp": 1_700_000_000 + i}
        value |= {"features": {"x": i % 7}, "prediction": (i % 10) / 10}
        out.append(MemoryRecord(TOPIC, i % 2, i // 2, json.dumps(value).encode()))
    return out


def service(store: LocalStore | None, **state: object) -> tuple[Service, Telemetry]:
    settings = Settings.model_validate(
        {
            "state": {"checkpoint_interval_s": 3600.0, **state},
            "defaults": {"reference_size": 100, "window_size": 50},
        }
    )
    telemetry = Telemetry()
    return Service(settings, telemetry, lambda stop, beat: None, store=store), telemetry


def consume(svc: Service, source: MemorySource, batches: int) -> None:
    stop = threading.Event()
    for _ in range(batches):
        batch = source.poll(0, 100)
        if batch:
            svc.process_batch(source, batch, stop)


def test_offsets_are_committed_only_with_a_checkpoint(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    svc, telemetry = service(store)
    source = MemorySource(records(400))
    consume(svc, source, 2)
    assert source.committed == {}  # no checkpoint yet: nothing committed
    assert svc.checkpoint(source)
    assert source.committed == {(TOPIC, 0): 100, (TOPIC, 1): 100}
    assert store.files()[0][0] == 1
    assert telemetry.snapshot().checkpoints == 1
    assert svc.checkpoint(source)  # nothing moved: no new file
    assert store.files()[0][0] == 1


def test_a_checkpoint_that_cannot_be_written_commits_nothing_and_is_counted(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("")
    svc, telemetry = service(LocalStore(tmp_path / "file" / "state"))
    source = MemorySource(records(200))
    consume(svc, source, 2)
    assert not svc.checkpoint(source)
    assert source.committed == {}
    assert telemetry.snapshot().checkpoint_failures == {"write": 1}


def test_a_restart_from_a_checkpoint_counts_every_event_once(tmp_path: Path) -> None:
    everything = records(1000)
    whole, whole_telemetry = service(None)
    consume(whole, MemorySource(everything), 10)

    store = LocalStore(tmp_path)
    first, _ = service(store)
    source = MemorySource(everything)
    consume(first, source, 4)
    assert first.checkpoint(source)
    consume(first, source, 2)  # applied, then lost: the process dies here

    second, telemetry = service(store)
    restored = second.restore()
    assert restored is not None and restored.sequence == 1
    resume = second.positions()
    assert resume == {(TOPIC, 0): 200, (TOPIC, 1): 200}
    rest = [r for r in everything if r.offset >= resume[(r.topic, r.partition)]]
    consume(second, MemorySource(rest), 10)

    assert telemetry.snapshot().events == whole_telemetry.snapshot().events
    assert json.dumps(second.pipeline.to_state()) == json.dumps(whole.pipeline.to_state())


def test_a_checkpoint_of_another_group_is_not_restored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first, _ = service(store)
    source = MemorySource(records(200))
    consume(first, source, 2)
    first.checkpoint(source)
    settings = Settings.model_validate({"kafka": {"group_id": "other"}})
    telemetry = Telemetry()
    other = Service(settings, telemetry, lambda stop, beat: None, store=store)
    assert other.restore() is None
    assert other.positions() == {}
    assert telemetry.snapshot().checkpoint_failures == {"incompatible": 1}


def test_a_damaged_checkpoint_at_start_falls_back_and_is_counted(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first, _ = service(store)
    source = MemorySource(records(400))
    consume(first, source, 2)
    first.checkpoint(source)
    consume(first, source, 2)
    first.checkpoint(source)
    damage_flip(store.files()[0][1])
    second, telemetry = service(store)
    restored = second.restore()
    assert restored is not None and restored.sequence == 1
    assert second.positions() == {(TOPIC, 0): 100, (TOPIC, 1): 100}
    assert telemetry.snapshot().checkpoint_failures == {"corrupt": 1}
    assert telemetry.event_count("predictions") == 200
    # The next checkpoint does not reuse the damaged one's number.
    consume(second, MemorySource(records(200, start=200)), 2)
    assert second.checkpoint(MemorySource([]))
    assert store.files()[0][0] == 2
    assert os.path.exists(tmp_path / "checkpoint-000000000002.json.gz")


def test_memory_freed_after_a_checkpoint_goes_back_to_the_system() -> None:
    # 4 KiB blocks come from glibc's heap (not mmap); one kept at the end pins the heap's
    # top, so only malloc_trim can hand the freed middle back. (CI runs on glibc.)
    def rss_mib() -> float:
        with open("/proc/self/status") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
        return kib / 1024

    blocks = [bytearray(4096) for _ in range(40_000)]  # about 160 MiB
    pin = bytearray(4096)
    before = rss_mib()
    del blocks
    release_free_memory()
    assert rss_mib() < before - 100
    assert len(pin) == 4096
