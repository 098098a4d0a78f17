"""The checkpoint writer: a background thread stores a checkpoint while the loop goes on.

The loop thread makes a checkpoint's JSON text (the state shares objects with the live
one, and the JSON encoder holds the GIL anyway) and hands it over with
:meth:`CheckpointWriter.start`. The writer thread checksums and gzips it (hashlib and
zlib release the GIL on large buffers), splices in the references and writes it to the
store: file, fsync, rename and prune for a :class:`~monitor.checkpoint.LocalStore`, one
acknowledged record per shard for a :class:`~monitor.checkpoint.ShardStore`.

One write at a time. The thread never touches the service: the loop thread takes the
outcome (:meth:`CheckpointWriter.take`, or :meth:`CheckpointWriter.wait`) and only then
counts it and commits the offsets it covers, as the Kafka consumer is not thread-safe.
An exception other than :class:`~monitor.checkpoint.CheckpointError` in the writer is
a bug: it is raised again on the loop thread when the outcome is taken.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.checkpoint import CheckpointError, CheckpointText, LocalStore, ShardStore, compress

__all__ = ["CheckpointWriter", "Outcome", "Part"]


@dataclass(frozen=True)
class Part:
    """One checkpoint to store: the whole state (``shard`` None) or one shard's."""

    shard: int | None
    checkpoint: CheckpointText
    offsets: dict[tuple[str, int], int]  # the next offset to read, that it covers
    created_at: float


#: A part and what storing it gave: the bytes written, or why it was not.
Outcome = tuple[Part, int | CheckpointError]


class CheckpointWriter:
    """Stores the parts of one checkpoint at a time on a thread of its own.

    The thread is not a daemon: the interpreter does not exit while a write is in
    flight, even should the service fail to wait for it.
    """

    def __init__(self, store: LocalStore | ShardStore) -> None:
        self._store = store
        self._thread: threading.Thread | None = None
        self._outcomes: list[Outcome] = []
        self._crash: BaseException | None = None
        #: When the write in flight began (the caller's clock); None when there is none.
        #: Read by the HTTP thread: a write stuck for long makes the daemon unhealthy.
        self.started_at: float | None = None

    @property
    def busy(self) -> bool:
        """A write was started and its outcome not taken yet."""
        return self._thread is not None

    def start(self, parts: Sequence[Part], now: float) -> None:
        if self._thread is not None:
            raise RuntimeError("a checkpoint write is in flight: take its outcome first")
        self._outcomes, self._crash = [], None
        self.started_at = now
        self._thread = threading.Thread(
            target=self._write, args=(list(parts),), name="driftline-checkpoint-writer"
        )
        self._thread.start()

    def take(self) -> list[Outcome] | None:
        """The outcome of the write, once it is finished; ``None`` while it runs or
        when none was started. Does not block."""
        if self._thread is None or self._thread.is_alive():
            return None
        return self._finish()

    def wait(self) -> list[Outcome] | None:
        """The outcome of the write in flight once it is finished; ``None`` if none was
        started."""
        if self._thread is None:
            return None
        self._thread.join()
        return self._finish()

    def _finish(self) -> list[Outcome]:
        assert self._thread is not None
        self._thread.join()
        self._thread = None
        self.started_at = None
        if self._crash is not None:
            crash, self._crash = self._crash, None
            raise crash
        return self._outcomes

    def _write(self, parts: list[Part]) -> None:
        try:
            for part in parts:
                try:
                    size = self._save(part)
                except CheckpointError as exc:
                    self._outcomes.append((part, exc))
                else:
                    self._outcomes.append((part, size))
        except BaseException as exc:  # a bug: taken to the loop thread, raised there
            self._crash = exc

    def _save(self, part: Part) -> int:
        if isinstance(self._store, LocalStore):
            return self._store.write(part.checkpoint)
        assert part.shard is not None
        data = compress(part.checkpoint)
        self._store.save(part.shard, data)
        return len(data)
