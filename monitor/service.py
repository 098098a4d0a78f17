"""The service loop: poll a batch, decode, count, dead-letter, commit — until told to stop.

One thread runs :meth:`Service.run`; the HTTP thread only reads
:meth:`Service.healthy`, :meth:`Service.ready` and the telemetry snapshot; the
checkpoint writer's thread (:mod:`monitor.checkpoint_writer`) only compresses and stores
the text of checkpoints the loop made.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from typing import Any

from monitor.alerts import AlertEngine, Conditions, Transition, summary
from monitor.checkpoint import (
    Checkpoint,
    CheckpointError,
    Finite,
    LocalStore,
    ShardStore,
    decode,
    release_free_memory,
    to_text,
)
from monitor.checkpoint_writer import CheckpointWriter, Part
from monitor.config import Settings
from monitor.errors import DecodeError
from monitor.events import Event, EventDecoder, StreamName
from monitor.pipeline import Pipeline, Status
from monitor.reference import ModelReference
from monitor.source import Backoff, DeadLetter, EventSource, Record
from monitor.telemetry import OTHER, UNKNOWN, BatchStats, Telemetry

__all__ = ["RunSummary", "Service"]

log = logging.getLogger(__name__)

# Opens the source, calling the heartbeat at each attempt, until it succeeds or stop is set.
Connect = Callable[[threading.Event, Callable[[], None]], "EventSource | None"]
Clock = Callable[[], float]

_LAG_INTERVAL_S = 1.0
ALERT_INTERVAL_S = 1.0
#: Alert transitions kept for publication while the alerts topic is unavailable.
MAX_OUTBOX = 10_000
#: Event times further ahead of their Kafka record's time are replaced by the latter.
MAX_FUTURE_S = 3600.0
_TOPIC_PARTITION = attrgetter("topic", "partition")
_MODEL = attrgetter("model")


@dataclass(frozen=True)
class RunSummary:
    batches: int
    events: int
    invalid: int
    uncommitted_batches: int


class Service:
    """Consumes event batches from an :class:`EventSource` and keeps the telemetry.

    Parameters
    ----------
    settings
        The daemon's settings.
    telemetry
        Where counts go; read by the metrics collector.
    connect
        Opens the source, retrying until it succeeds or the stop event is set.
    pipeline
        The per-model pipeline; a fresh one by default.
    clock
        Monotonic seconds; injectable for tests.
    wall
        The time alerts are evaluated and stamped with: epoch seconds for the daemon,
        event time for a replay.
    store
        Where checkpoints go: a :class:`LocalStore` (the whole state in one file, for one
        instance), a :class:`ShardStore` (by partition number, restored when partitions
        are assigned, so that state follows them through the group), or ``None``
        (offsets committed after every batch, no state across restarts).
    """

    def __init__(
        self,
        settings: Settings,
        telemetry: Telemetry,
        connect: Connect,
        clock: Clock = time.monotonic,
        pipeline: Pipeline | None = None,
        wall: Clock = time.time,
        store: LocalStore | ShardStore | None = None,
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._connect = connect
        self._clock = clock
        topics = settings.kafka.topics
        self._streams: dict[str, StreamName] = {
            topics.predictions: "predictions",
            topics.outcomes: "outcomes",
            topics.signals: "signals",
        }
        self._decoder = EventDecoder(settings.limits.max_event_bytes)
        self.pipeline = pipeline or Pipeline(settings)
        self._last_progress = clock()
        self._last_lag = float("-inf")
        self._invalid_logged = _RateLimit(clock, per_interval=10, interval_s=10.0)
        self._wall = wall
        self.alerts = AlertEngine.from_settings(settings.alerts)
        self._conditions = Conditions.from_settings(settings.alerts)
        self._outbox: deque[Transition] = deque()
        self._last_alerts = float("-inf")
        self._alert_view = AlertView({}, {}, 0, 0, 0)
        #: Called after each alert evaluation with its transitions (status page, demo).
        self.observers: list[Callable[[list[Transition]], None]] = []
        self._store = store
        self._writer = None if store is None else CheckpointWriter(store)
        # Next offset of every partition whose records are applied to the state, and
        # those the last durable checkpoint covers.
        self._positions: dict[tuple[str, int], int] = {}
        self._durable: dict[tuple[str, int], int] = {}
        self._sequence = 0
        self._last_checkpoint = clock()
        self._source: EventSource | None = None
        self._held: set[int] = set()  # shards whose state is here (shard stores)
        self._leaving: set[int] = set()  # revoked, to be dropped unless given back
        self._commit_due = False  # durable offsets not committed yet (saved in a rebalance)
        self._failed_logged = _RateLimit(clock, per_interval=1, interval_s=60.0)

    # -- read by the HTTP thread -------------------------------------------------

    def healthy(self) -> bool:
        """The loop made progress within ``http.stall_after_s``, and no checkpoint has
        been in writing for longer (the loop goes on meanwhile, but nothing is durable)."""
        now, limit = self._clock(), self._settings.http.stall_after_s
        writing = None if self._writer is None else self._writer.started_at
        return now - self._last_progress < limit and (writing is None or now - writing < limit)

    def ready(self) -> bool:
        """Connected to the broker with partitions assigned."""
        return self._telemetry.ready

    def _beat(self) -> None:
        self._last_progress = self._clock()

    # -- the loop ------------------------------------------------------------------

    def run(self, stop: threading.Event, max_batches: int | None = None) -> RunSummary:
        """Consume until ``stop`` is set (or ``max_batches`` non-empty batches are done)."""
        source = self._connect(stop, self._beat)
        if source is None:
            return RunSummary(0, 0, 0, 0)
        self._telemetry.connected = True
        self._source = source
        kafka = self._settings.kafka
        batches = events = invalid = uncommitted = 0
        try:
            while not stop.is_set() and (max_batches is None or batches < max_batches):
                self._beat()
                records = source.poll(kafka.poll_timeout_ms, kafka.max_poll_records)
                self._telemetry.ready = source.ready()
                if records:
                    batches += 1
                    stats = self.process_batch(source, records, stop)
                    if stats is None:
                        uncommitted += 1
                    else:
                        events += len(records)
                        invalid += sum(stats.dead_letters.values())
                self._update_lag(source)
                self.tick(source)
                # A written checkpoint is taken up at once (a cheap check): its offsets
                # are committed and the checkpoint metrics move when it is durable.
                self.collect_checkpoint(source)
                if self._clock() - self._last_checkpoint >= self._interval_s:
                    self.begin_checkpoint(source)
        finally:
            self.tick(source, force=True)
            self.checkpoint(source)  # waits for the write in flight, then for its own
            self._source = None
            self._telemetry.ready = False
            self._telemetry.connected = False
            source.close()
        summary = RunSummary(batches, events, invalid, uncommitted)
        log.info(
            "stopped: %d events in %d batches (%d invalid), %d batches left uncommitted",
            summary.events,
            summary.batches,
            summary.invalid,
            summary.uncommitted_batches,
        )
        return summary

    def process_batch(
        self, source: EventSource, records: list[Record], stop: threading.Event
    ) -> BatchStats | None:
        """Apply one batch and commit it; ``None`` if its dead letters could not be delivered."""
        started = self._clock()
        batch = _Batch()
        positions = self._positions
        # Records come in runs of one partition: what is per partition is looked up once
        # per run, and its records are decoded together.
        for tp, group in groupby(records, _TOPIC_PARTITION):
            run = list(group)
            position = positions.get(tp, 0)
            if run[0].offset < position:
                # Fetched before the seek to the state's offset: applied already.
                run = [record for record in run if record.offset >= position]
                if not run:
                    continue
            batch.offsets[tp] = run[-1].offset + 1
            stream = self._streams[tp[0]]
            self._take(batch, stream, tp[1], run)
        if batch.letters and not self._deliver(source, batch.letters, stop):
            log.error(
                "dead-letter topic unavailable; batch of %d records not committed, "
                "it will be read again after restart",
                len(records),
            )
            return None
        # The batch's effects are applied only once its dead letters are safe.
        statuses = self.pipeline.apply(batch.events, batch.times, batch.shard_of)
        shards = batch.shards
        self._count(batch.events, statuses, batch.runs, shards)
        models = self.pipeline.model_label
        for stream, name, shard in batch.invalid:
            # Invalid events never take a model label: hostile names would crowd out real ones.
            label = (models.known(name) if name else None) or UNKNOWN
            shards[shard].events[(stream, label, "invalid")] += 1
        self._telemetry.add_counts(shards, self._clock() - started)
        self._telemetry.set_label_overflow("model", models.overflowed)
        self._positions.update(batch.offsets)
        if self._store is None:
            source.commit(batch.offsets)
        total = BatchStats()
        for stats in shards.values():
            total.events.update(stats.events)
            total.dead_letters.update(stats.dead_letters)
        return total

    def _take(self, batch: _Batch, stream: StreamName, shard: int, run: list[Record]) -> None:
        """Decode a run of one partition's records into ``batch``: its valid events with
        their event times, its invalid ones as dead letters."""
        stats = batch.shards.get(shard)
        if stats is None:
            stats = batch.shards[shard] = BatchStats()
        events, times = batch.events, batch.times
        start = len(events)
        newest = float("-inf")
        decoded = self._decoder.decode_many(stream, [record.value for record in run])
        for record, event in zip(run, decoded, strict=True):
            if isinstance(event, DecodeError):
                self._reject(record, event, stream, shard, stats, batch)
                continue
            record_time = record.timestamp / 1000
            # Epoch seconds or None: the decoder turned RFC 3339 text into seconds.
            timestamp: float | None = event.timestamp  # type: ignore[assignment]
            if timestamp is None:
                timestamp = record_time
            elif timestamp > record_time + MAX_FUTURE_S:
                # One event from the far future would expire every waiting prediction.
                stats.future_timestamps[stream] += 1
                timestamp = record_time
            if timestamp > newest:
                newest = timestamp
            events.append(event)
            times.append(timestamp)
        if len(events) > start:
            batch.shard_of += [shard] * (len(events) - start)
            stats.event_time(stream, newest)
            batch.runs.append((len(events), stream, shard))

    def _reject(
        self,
        record: Record,
        error: DecodeError,
        stream: StreamName,
        shard: int,
        stats: BatchStats,
        batch: _Batch,
    ) -> None:
        """Count an invalid record and keep its dead letter for delivery."""
        batch.invalid.append((stream, error.model, shard))
        stats.dead_letters[error.reason] += 1
        batch.letters.append(DeadLetter(record, error.reason, error.detail))
        if self._invalid_logged():
            log.warning(
                "invalid event at %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                error,
            )

    def _count(
        self,
        events: list[Event],
        statuses: list[Status],
        runs: list[tuple[int, StreamName, int]],
        shards: dict[int, BatchStats],
    ) -> None:
        """Count the events by stream, model (its label) and status, per shard; ``runs``
        end (exclusive) where their stream or shard changes."""
        models = list(map(_MODEL, events))
        ok = statuses.count("ok") == len(statuses)  # the usual batch: count models alone
        # The runs of one stream and shard are counted together (a replay's are short).
        groups: dict[tuple[StreamName, int], list[Any]] = {}
        start = 0
        for end, stream, shard in runs:
            chunk: list[Any] = models[start:end]
            if not ok:
                chunk = list(zip(chunk, statuses[start:end], strict=True))
            group = groups.get((stream, shard))
            if group is None:
                groups[(stream, shard)] = chunk
            else:
                group += chunk
            start = end
        label = self.pipeline.model_label.known
        for (stream, shard), keys in groups.items():
            counts = shards[shard].events
            for key, n in Counter(keys).items():
                model, status = (key, "ok") if ok else key
                counts[(stream, label(model) or OTHER, status)] += n

    # -- checkpoints -----------------------------------------------------------------

    @property
    def _interval_s(self) -> float:
        return self._settings.state.checkpoint_interval_s

    def positions(self) -> dict[tuple[str, int], int]:
        """Next offset to read per partition for the state held now (seek targets)."""
        return dict(self._positions)

    def restore(self) -> Checkpoint | None:
        """Take over the newest usable checkpoint, if any; call before :meth:`run`.

        A damaged or foreign checkpoint is reported, counted and passed over for the one
        before it; with none usable, every model starts afresh. Never raises on data.
        """
        if not isinstance(self._store, LocalStore):
            return None  # a shard store restores on assignment
        report = self._store.load()
        for path, error in report.failures:
            self._telemetry.checkpoint_failed(error.kind)
            log.error("checkpoint %s is unusable (%s): %s; set aside", path, error.kind, error)
        checkpoint = report.checkpoint
        if checkpoint is None:
            if report.failures:
                log.error("no usable checkpoint: every model starts afresh")
            return None
        self._sequence = checkpoint.sequence
        expected = self._identity()
        if dict(checkpoint.meta) != expected:
            self._telemetry.checkpoint_failed("incompatible")
            log.error(
                "checkpoint %s was written for another group or topics (%s, here %s); "
                "not restored: every model starts afresh",
                report.path,
                dict(checkpoint.meta),
                expected,
            )
            return None
        try:
            state = checkpoint.state
            # Read the parts into fresh objects first: a state that fails anywhere
            # changes nothing. The pipeline's own load is all or nothing.
            Telemetry().load_state(state["telemetry"])
            alerts = AlertEngine.from_settings(self._settings.alerts)
            alerts.load_state(state["alerts"])
            failed = self.pipeline.load_state(state["pipeline"], checkpoint.references)
        except (KeyError, TypeError, ValueError) as exc:
            self._telemetry.checkpoint_failed("incompatible")
            log.error(
                "checkpoint %s cannot be restored (%s); every model starts afresh",
                report.path,
                str(exc)[:200],
            )
            return None
        self._telemetry.load_state(state["telemetry"])
        self.alerts = alerts
        for model in failed:
            log.warning("model %s: settings changed since the checkpoint; it starts afresh", model)
        self._positions = dict(checkpoint.offsets)
        self._durable = dict(checkpoint.offsets)
        log.info(
            "restored checkpoint %d from %s: %d models, %d partitions, %d events counted",
            checkpoint.sequence,
            report.path,
            len(self.pipeline.snapshots()),
            len(checkpoint.offsets),
            self._telemetry.event_count(),
        )
        return checkpoint

    def on_revoked(self, partitions: list[tuple[str, int]]) -> None:
        """Partitions are about to move: save the state that covers them (the group's
        offsets cannot be committed from here; the state's offsets are what count)."""
        if self._source is not None:
            self.checkpoint(self._source, commit=False)
        self._leaving.update(p for _, p in partitions)

    def on_assigned(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Partitions assigned: with a shard store, drop the shards that went elsewhere
        and take over the state of those new here. Returns where to resume each."""
        # The write in flight covers the partitions held until now: taken up before they
        # change (its offsets are committed at the next checkpoint, not from here).
        self.collect_checkpoint(None, wait=True)
        assigned = set(partitions)
        shards = {p for _, p in partitions}
        if self._store is not None and not isinstance(self._store, LocalStore):
            for shard in sorted(self._leaving - shards):
                self._drop_shard(shard)
            self._load_shards(shards - self._held)
            self._held |= shards
        # Positions of partitions not ours any more are forgotten: should one come back,
        # the group's offset (its other owner's) is where to go on, not ours.
        for positions in (self._positions, self._durable):
            for tp in [tp for tp in positions if tp not in assigned]:
                del positions[tp]
        self._leaving.clear()
        return {tp: offset for tp, offset in self._positions.items() if tp in assigned}

    def _drop_shard(self, shard: int) -> None:
        models = self.pipeline.models_in(shard)
        self.pipeline.drop_shard(shard)
        self._telemetry.drop_shard(shard)
        self.alerts.drop(models)
        for positions in (self._positions, self._durable):
            for tp in [tp for tp in positions if tp[1] == shard]:
                del positions[tp]
        self._held.discard(shard)
        log.info("shard %d moved elsewhere: dropped its %d models", shard, len(models))

    def _load_shards(self, shards: set[int]) -> None:
        assert self._store is not None and not isinstance(self._store, LocalStore)
        try:
            found = self._store.load(shards)
        except CheckpointError as exc:
            self._telemetry.checkpoint_failed(exc.kind)
            log.error("cannot read the state of shards %s (%s); they start afresh", shards, exc)
            return
        for shard, data in sorted(found.items()):
            try:
                checkpoint = decode(data)
                if dict(checkpoint.meta) != self._identity():
                    raise CheckpointError("incompatible", f"written for {dict(checkpoint.meta)}")
                state = checkpoint.state
                if state.get("shard") != shard:
                    raise CheckpointError(
                        "incompatible", f"it is the state of {state.get('shard')!r}"
                    )
                Telemetry().add_shard(shard, state["telemetry"])  # check it first
                AlertEngine().add_state(state["alerts"])
                failed = self.pipeline.add_shard(shard, state["pipeline"], checkpoint.references)
            except CheckpointError as exc:
                self._telemetry.checkpoint_failed(exc.kind)
                log.error("state of shard %d unusable (%s); it starts afresh", shard, exc)
                continue
            except (KeyError, TypeError, ValueError) as exc:
                self._telemetry.checkpoint_failed("incompatible")
                log.error(
                    "state of shard %d unusable (%s); it starts afresh", shard, str(exc)[:200]
                )
                continue
            self._telemetry.add_shard(shard, state["telemetry"])
            self.alerts.add_state(state["alerts"])
            self._positions.update(checkpoint.offsets)
            self._durable.update(checkpoint.offsets)
            self._sequence = max(self._sequence, checkpoint.sequence)
            for model in failed:
                log.warning(
                    "model %s of shard %d: not restored (settings changed, or held here)",
                    model,
                    shard,
                )
            log.info(
                "restored shard %d (checkpoint %d): models %s, offsets %s",
                shard,
                checkpoint.sequence,
                ", ".join(self.pipeline.models_in(shard)) or "none",
                dict(checkpoint.offsets),
            )

    def checkpoint(self, source: EventSource, commit: bool = True) -> bool:
        """Write the state if it moved since the last checkpoint and return once it is
        durable, its offsets committed (unless ``commit`` is false: during a rebalance,
        they are committed at the next checkpoint); ``False`` if it could not be written
        (nothing is committed then).

        For the final checkpoint, the one at revocation, and callers that need the state
        durable when it returns; the loop uses :meth:`begin_checkpoint` and
        :meth:`collect_checkpoint` instead and goes on while the state is written.
        """
        commit_to = source if commit else None
        self.collect_checkpoint(commit_to, wait=True)  # one write at a time
        if not self.begin_checkpoint(commit_to):
            return True
        return self.collect_checkpoint(commit_to, wait=True) is not False

    def begin_checkpoint(self, source: EventSource | None) -> bool:
        """Make the text of the state that moved since the last checkpoint and hand it to
        the writer thread; ``False`` if nothing was started: nothing moved (then the
        offsets of one saved during a rebalance are committed to ``source``), or a write
        is still in flight (then nothing is done: the next call tries again)."""
        if self._writer is not None and self._writer.busy:
            return False
        self._last_checkpoint = self._clock()
        if self._writer is None:
            return False
        if self._positions == self._durable:
            if source is not None and self._commit_due:
                self._commit_due = not source.commit(dict(self._durable))
            return False
        self._writer.start(self._parts(), self._clock())
        return True

    def collect_checkpoint(self, source: EventSource | None, wait: bool = False) -> bool | None:
        """Take up the write in flight once it is finished (or wait for it): what it
        wrote is durable and the offsets it covers are committed to ``source`` (``None``
        during a rebalance: at the next checkpoint); failures are counted and logged.
        ``True`` if every part was written, ``False`` if not, ``None`` if no write
        finished (none was in flight, or it still runs and ``wait`` is false)."""
        outcomes = None
        if self._writer is not None:
            outcomes = self._writer.wait() if wait else self._writer.take()
        if outcomes is None:
            return None
        written = True
        for part, outcome in outcomes:
            if isinstance(outcome, CheckpointError):
                written = False
                self._telemetry.checkpoint_failed("write")
                if self._failed_logged():
                    log.error(
                        "cannot write %s (%s); offsets stay at the last durable state and a "
                        "restart will read the records since again",
                        "a checkpoint" if part.shard is None else f"shard {part.shard}'s state",
                        outcome,
                    )
                continue
            self._sequence = max(self._sequence, part.checkpoint.sequence)
            self._durable.update(part.offsets)
            self._telemetry.checkpoint_written(part.created_at, outcome)
            self._commit_due = True
        if source is not None and self._commit_due:
            self._commit_due = not source.commit(dict(self._durable))
        release_free_memory()  # the state and its encoding were large and short-lived
        return written

    def _parts(self) -> list[Part]:
        """The text of the next checkpoint: of the whole state (a local store), or one
        per shard whose offsets moved (a shard store)."""
        positions = dict(self._positions)
        if isinstance(self._store, LocalStore):
            groups: list[tuple[int | None, dict[tuple[str, int], int]]] = [(None, positions)]
        else:
            moved = sorted({tp[1] for tp, o in positions.items() if self._durable.get(tp) != o})
            groups = [
                (shard, {tp: o for tp, o in positions.items() if tp[1] == shard}) for shard in moved
            ]
        parts = []
        for n, (shard, offsets) in enumerate(groups, start=1):
            checkpoint = self._checkpoint_of(offsets, shard, self._sequence + n)
            parts.append(Part(shard, to_text(checkpoint), offsets, checkpoint.created_at))
        return parts

    def _checkpoint_of(
        self, offsets: dict[tuple[str, int], int], shard: int | None, sequence: int
    ) -> Checkpoint:
        """A checkpoint of the whole state, or of one shard's."""
        refs: dict[str, ModelReference] = {}
        state: dict[str, Any]
        if shard is None:
            state = {
                # The join store's entries, most of the state, are written as they lie.
                "pipeline": self.pipeline.to_state(refs, wrap=Finite),
                "telemetry": self._telemetry.to_state(),
                "alerts": self.alerts.to_state(),
            }
        else:
            state = {
                "shard": shard,
                "pipeline": self.pipeline.shard_state(shard, refs, wrap=Finite),
                "telemetry": self._telemetry.shard_state(shard),
                "alerts": self.alerts.to_state(self.pipeline.models_in(shard)),
            }
        return Checkpoint(
            sequence=sequence,
            created_at=time.time(),
            offsets=offsets,
            references=refs,
            state=state,
            group_id=self._settings.kafka.group_id,
            meta=self._identity(),
        )

    def _identity(self) -> dict[str, str]:
        """What a checkpoint must have been written for to be restored here."""
        kafka = self._settings.kafka
        topics = kafka.topics
        return {
            "group_id": kafka.group_id,
            "topics": ",".join([topics.predictions, topics.outcomes, topics.signals]),
        }

    # -- alerts --------------------------------------------------------------------

    def tick(self, source: EventSource, force: bool = False) -> None:
        """Refresh the model snapshots and the alerts (at most once a second unless forced)."""
        now = self._wall()
        due = math.isfinite(now) and (force or now - self._last_alerts >= ALERT_INTERVAL_S)
        # Alerts read fresh snapshots.
        self.pipeline.end_batch(self._clock(), force=force or due)
        if not due:
            return
        self._last_alerts = now
        snap = self._telemetry.snapshot()
        conditions = self._conditions(
            now,
            self.pipeline.join.watermark,
            self.pipeline.snapshots(),
            snap.events,
            sum(snap.consumer_lag.values()),
        )
        transitions = self.alerts.evaluate(now, conditions)
        for t in transitions:
            c = t.alert.condition
            log.warning(
                "alert %s %s: %s%s",
                c.alert,
                t.status,
                summary(c),
                f" (model version {c.model_version})" if c.model_version else "",
            )
        self._outbox.extend(transitions)
        dropped = 0
        while len(self._outbox) > MAX_OUTBOX:
            self._outbox.popleft()
            dropped += 1
        published = self._publish(source)
        view = self._alert_view
        counts = dict(view.transitions)
        for t in transitions:
            key = (t.alert.condition.alert, t.status)
            counts[key] = counts.get(key, 0) + 1
        self._alert_view = AlertView(
            self.alerts.active(),
            counts,
            view.published + published,
            view.dropped + dropped,
            self.alerts.overflowed,
        )
        for observer in self.observers:
            observer(transitions)

    def _publish(self, source: EventSource) -> int:
        """Send the outbox to the alerts topic; what fails waits for the next tick."""
        if not self._outbox:
            return 0
        batch = list(self._outbox)
        failed = source.publish_alerts([(t.key, t.to_json()) for t in batch])
        self._outbox.clear()
        if failed:
            keep = {record[0] + b"\0" + record[1] for record in failed}
            self._outbox.extend(t for t in batch if t.key + b"\0" + t.to_json() in keep)
        return len(batch) - len(self._outbox)

    def alert_view(self) -> AlertView:
        """Active alerts and transition counts; safe to read from another thread."""
        return self._alert_view

    def _deliver(
        self, source: EventSource, letters: list[DeadLetter], stop: threading.Event
    ) -> bool:
        """Send dead letters until the broker takes them all, or ``stop`` is set."""
        kafka = self._settings.kafka
        backoff = Backoff(kafka.connect_backoff_initial_s, kafka.connect_backoff_max_s)
        while True:
            for letter in letters:
                source.send_dead_letter(letter)
            letters = source.flush_dead_letters()
            if not letters:
                return True
            if stop.is_set():
                return False
            delay = backoff.next()
            log.warning("%d dead letters not delivered; retrying in %.1f s", len(letters), delay)
            stop.wait(delay)

    def _update_lag(self, source: EventSource) -> None:
        now = self._clock()
        if now - self._last_lag >= _LAG_INTERVAL_S:
            self._last_lag = now
            self._telemetry.set_consumer_lag(source.lag())


@dataclass
class _Batch:
    """What one batch's records give, gathered run by run before any is applied."""

    # Counts by the partition number of their record: a shard's counts move with it.
    shards: dict[int, BatchStats] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # next to read
    letters: list[DeadLetter] = field(default_factory=list)
    invalid: list[tuple[StreamName, str | None, int]] = field(default_factory=list)
    # The valid events, their event times and shards; the runs of them by stream and
    # shard as (end, stream, shard): what they are counted by.
    events: list[Event] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    shard_of: list[int] = field(default_factory=list)
    runs: list[tuple[int, StreamName, int]] = field(default_factory=list)


@dataclass(frozen=True)
class AlertView:
    active: Mapping[tuple[str, str, str], int]  # (model, alert, severity) -> 1, firing
    transitions: Mapping[tuple[str, str], int]  # (alert, status) -> count
    published: int  # transitions acknowledged by the alerts topic
    dropped: int  # transitions given up on: the outbox was full
    overflowed: int = 0  # conditions not tracked: alert instances at their cap


class _RateLimit:
    """True for the first ``per_interval`` calls in each interval; counts the rest."""

    def __init__(self, clock: Clock, per_interval: int, interval_s: float) -> None:
        self._clock = clock
        self._per_interval = per_interval
        self._interval_s = interval_s
        self._window_start = float("-inf")
        self._count = 0
        self.suppressed = 0

    def __call__(self) -> bool:
        now = self._clock()
        if now - self._window_start >= self._interval_s:
            if self.suppressed:
                log.warning("%d more invalid events not logged", self.suppressed)
            self._window_start, self._count, self.suppressed = now, 0, 0
        self._count += 1
        if self._count <= self._per_interval:
            return True
        self.suppressed += 1
        return False
