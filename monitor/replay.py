"""``driftline replay FILE``: the daemon's pipeline over a JSON-lines file of events, offline.

Each line is one event. Its stream is read from its fields, as a producer would pick
the topic: a ``signal`` field makes a signal, else a ``label`` field an outcome, else
a prediction. Lines that are not JSON objects count as invalid predictions. Events
without a ``timestamp`` take the previous event's (the file's modification time for
the first ones), where the daemon would take the Kafka record's time.

The lines go through the same :class:`~monitor.service.Service` batch code as the
daemon's records, so the final metrics are the daemon's for the same events in the
same order. Invalid lines are counted and, with ``--dead-letters``, written out with
their reason; nothing is dropped silently.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from monitor import __version__
from monitor.alerts import AlertInstance
from monitor.alerts import summary as alert_summary
from monitor.config import Settings
from monitor.errors import DriftlineError
from monitor.metrics import make_registry, render
from monitor.metrics_models import AlertCollector, ModelCollector
from monitor.model import ModelSnapshot
from monitor.pipeline import Pipeline
from monitor.progress import Progress
from monitor.reference import ModelReference
from monitor.service import Service
from monitor.signals import SignalState
from monitor.source import DeadLetter, Record
from monitor.telemetry import Telemetry

__all__ = ["FileSource", "ReplayResult", "replay", "run_replay"]

_BATCH = 1000


@dataclass(frozen=True)
class LineRecord:
    """One line of the file, shaped as the Kafka record the daemon would have read."""

    topic: str
    partition: int
    offset: int  # the line number, from 1
    timestamp: int  # milliseconds since the epoch
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()


class FileSource:
    """Serves the lines of a JSON-lines file as records, in batches; keeps dead letters."""

    def __init__(self, stream: IO[bytes], settings: Settings, start_time_s: float) -> None:
        self._stream = stream
        topics = settings.kafka.topics
        self._topics = {
            "predictions": topics.predictions,
            "outcomes": topics.outcomes,
            "signals": topics.signals,
        }
        self._time_ms = int(start_time_s * 1000)
        self.lines = 0
        self.bytes_read = 0
        self.dead_letters: list[DeadLetter] = []
        self.alerts: list[tuple[bytes, bytes]] = []
        self._queued: list[DeadLetter] = []

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        batch: list[Record] = []
        while len(batch) < max_records:
            raw = self._stream.readline()
            if not raw:
                break
            self.bytes_read += len(raw)
            self.lines += 1
            value = raw.rstrip(b"\r\n")
            if not value.strip():
                continue  # blank lines separate nothing and are not events
            stream, timestamp = _peek(value)
            if timestamp is not None:
                self._time_ms = int(timestamp * 1000)
            batch.append(LineRecord(self._topics[stream], 0, self.lines, self._time_ms, value))
        return batch

    def ready(self) -> bool:
        return True

    def lag(self) -> Mapping[tuple[str, int], int]:
        return {}

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        return True

    def send_dead_letter(self, letter: DeadLetter) -> None:
        self._queued.append(letter)

    def flush_dead_letters(self, timeout_s: float = 30.0) -> list[DeadLetter]:
        self.dead_letters.extend(self._queued)
        self._queued = []
        return []

    def publish_alerts(
        self, records: Sequence[tuple[bytes, bytes]], timeout_s: float = 10.0
    ) -> list[tuple[bytes, bytes]]:
        self.alerts.extend(records)
        return []

    def close(self) -> None:
        pass


def _peek(value: bytes) -> tuple[str, float | None]:
    """The stream a line belongs to and its timestamp, if both can be read."""
    try:
        obj = msgspec.json.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return "predictions", None
    if not isinstance(obj, dict):
        return "predictions", None
    stream = "signals" if "signal" in obj else "outcomes" if "label" in obj else "predictions"
    return stream, _timestamp(obj.get("timestamp"))


def _timestamp(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if 0 <= value < 1e11 else None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.timestamp() if parsed.tzinfo is not None else None
    return None


@dataclass(frozen=True)
class ReplayResult:
    lines: int
    events: Counter[tuple[str, str, str]]  # (stream, model, status) -> count
    dead_letters: list[DeadLetter]
    snapshots: tuple[ModelSnapshot, ...]
    metrics: bytes  # the Prometheus text exposition at the end of the file
    alerts: list[bytes]  # alert transitions as published, in order
    firing: list[AlertInstance]  # alerts still firing at the end


def replay(
    stream: IO[bytes],
    settings: Settings,
    references: Mapping[str, ModelReference] | None = None,
    *,
    start_time_s: float | None = None,
    progress: Progress | None = None,
    pipeline: Pipeline | None = None,
) -> ReplayResult:
    """Run the daemon's pipeline over ``stream``, a file of JSON lines.

    ``pipeline`` is a fresh one by default; pass one to watch it while it runs.
    """
    telemetry = Telemetry()
    pipeline = pipeline or Pipeline(settings, references)
    source = FileSource(stream, settings, time.time() if start_time_s is None else start_time_s)
    # Alerts run on event time: their durations mean the same as in the daemon.
    service = Service(
        settings,
        telemetry,
        lambda stop, beat: source,
        pipeline=pipeline,
        wall=lambda: pipeline.join.watermark,
    )
    stop = threading.Event()
    while records := source.poll(0, _BATCH):
        service.process_batch(source, records, stop)
        service.tick(source)
        if progress is not None:
            progress.update(source.bytes_read)
    service.tick(source, force=True)
    registry = make_registry(
        telemetry,
        __version__,
        ModelCollector(pipeline.snapshots),
        AlertCollector(service.alert_view, pipeline.snapshots),
    )
    return ReplayResult(
        lines=source.lines,
        events=Counter(telemetry.snapshot().events),
        dead_letters=source.dead_letters,
        snapshots=pipeline.snapshots(),
        metrics=render(registry),
        alerts=[value for _, value in source.alerts],
        firing=[i for i in service.alerts.instances() if i.status == "firing"],
    )


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    """The ``replay`` command: replay, print a summary, write what was asked."""
    from monitor.cli import load_references

    path: Path = args.file
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DriftlineError(f"cannot read {path}: {exc.strerror}") from None
    with handle, Progress(path.stat().st_size, f"replaying {path.name}") as progress:
        result = replay(
            handle,
            settings,
            load_references(settings),
            start_time_s=path.stat().st_mtime,
            progress=progress,
        )
    if args.metrics_out is not None:
        args.metrics_out.write_bytes(result.metrics)
    if args.alerts_out is not None:
        args.alerts_out.write_bytes(b"".join(value + b"\n" for value in result.alerts))
    if args.dead_letters is not None:
        with args.dead_letters.open("w") as out:
            for letter in result.dead_letters:
                out.write(json.dumps(_letter(letter)) + "\n")
    print(summary(result, path), file=sys.stdout)
    return 0


def _letter(letter: DeadLetter) -> dict[str, Any]:
    value = letter.record.value
    return {
        "line": letter.record.offset,
        "reason": letter.reason,
        "detail": letter.detail,
        "value": None if value is None else value.decode("utf-8", "replace"),
    }


def summary(result: ReplayResult, path: Path) -> str:
    """A plain-text report of the replay, per model."""
    statuses: Counter[str] = Counter()
    for (_, _, status), n in result.events.items():
        statuses[status] += n
    total = sum(statuses.values())
    lines = [
        f"replayed {path}: {result.lines:,} lines, {total:,} events "
        + "("
        + ", ".join(f"{n:,} {s}" for s, n in sorted(statuses.items()))
        + ")"
    ]
    reasons = Counter(letter.reason for letter in result.dead_letters)
    if reasons:
        lines.append("invalid: " + ", ".join(f"{n:,} {r}" for r, n in sorted(reasons.items())))
    for snap in result.snapshots:
        lines.extend(_model_summary(snap, result.events))
    lines.append("")
    lines.append(f"alerts: {len(result.alerts):,} transitions; firing at the end:")
    for instance in sorted(result.firing, key=lambda i: i.condition.key):
        c = instance.condition
        lines.append(f"  {c.alert} [{instance.severity}] {alert_summary(c)}")
    if not result.firing:
        lines.append("  none")
    return "\n".join(lines)


def _model_summary(
    snap: ModelSnapshot, events: Mapping[tuple[str, str, str], int]
) -> Iterator[str]:
    per_stream: Counter[str] = Counter()
    for (stream, model, _), n in events.items():
        if model == snap.name:
            per_stream[stream] += n
    yield ""
    yield (
        f"model {snap.name}: {per_stream['predictions']:,} predictions, "
        f"{per_stream['outcomes']:,} outcomes, {per_stream['signals']:,} signals"
        + (f"; version {snap.version}" if snap.version else "")
    )
    if snap.learning:
        yield f"  reference: learning, {snap.reference_rows:,} rows so far"
    else:
        yield f"  reference: {snap.reference_rows:,} rows (profile id {snap.profile_id})"
    report = snap.report
    if report is not None:
        drifted = ", ".join(sorted(report.drifted_features)) or "none"
        yield (
            f"  last window #{report.index} ({report.rows:,} rows): "
            f"drift {'YES' if report.drifted else 'no'}; drifted features: {drifted}"
        )
        if snap.prediction_drifted:
            yield "  prediction drift: YES"
    if snap.performance:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(snap.performance.items()))
        yield f"  performance ({snap.task}): {shown}"
        if snap.performance_dropped:
            yield "  performance drop: YES"
    if any(snap.concept_drifts.values()):
        shown = ", ".join(f"{k} {v}" for k, v in sorted(snap.concept_drifts.items()))
        yield f"  concept drifts: {shown}"
    if snap.joins:
        shown = ", ".join(f"{n:,} {k}" for k, n in sorted(snap.joins.items()))
        coverage = snap.label_coverage
        yield f"  joins: {shown}" + ("" if coverage is None else f"; label coverage {coverage:.1%}")
    for name, state in sorted(snap.signals.items()):
        yield f"  signal {name}: {_signal(state)}"


def _signal(state: SignalState) -> str:
    parts = [f"{state.total:,.0f} in total"]
    if state.rate is not None:
        parts.append(f"rate {state.rate:.4g} per prediction")
    if state.baseline is not None:
        parts.append(f"baseline {state.baseline:.4g}")
    if state.dropped:
        parts.append("DROP")
    return ", ".join(parts)
