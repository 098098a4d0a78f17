"""Prometheus exposition of :class:`~monitor.telemetry.Telemetry`.

The only module that imports prometheus-client. A custom collector builds fresh
metric families from one snapshot at every scrape, so nothing is updated per event
and no state carries over between scrapes. Names and labels follow DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from monitor.events import REASONS, STREAMS
from monitor.telemetry import BATCH_DURATION_BUCKETS, Telemetry

__all__ = ["CONTENT_TYPE", "TelemetryCollector", "make_registry", "render"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Kinds of driftline_kafka_errors_total (see monitor.kafka_io).
KAFKA_ERROR_KINDS = ("connect", "poll", "commit", "dead_letter", "alert")
#: Kinds of driftline_checkpoint_failures_total (see monitor.checkpoint).
CHECKPOINT_FAILURE_KINDS = ("write", "read", "corrupt", "incompatible")


class TelemetryCollector(Collector):
    """Builds the ``driftline_*`` families from a telemetry snapshot."""

    def __init__(self, telemetry: Telemetry, version: str) -> None:
        self._telemetry = telemetry
        self._version = version

    def collect(self) -> Iterator[Metric]:
        snap = self._telemetry.snapshot()

        build = GaugeMetricFamily(
            "driftline_build_info", "driftline build; the value is always 1", labels=["version"]
        )
        build.add_metric([self._version], 1)
        yield build

        events = CounterMetricFamily(
            "driftline_events_total",
            "Events consumed, by stream, model and status",
            labels=["stream", "model", "status"],
        )
        for (stream, model, status), n in sorted(snap.events.items()):
            events.add_metric([stream, model, status], n)
        yield events

        dead = CounterMetricFamily(
            "driftline_dead_letters_total",
            "Records sent to the dead-letter topic, by reason",
            labels=["reason"],
        )
        # Every known key from the start: a healthy daemon shows 0, not "no data".
        for reason, n in sorted({**dict.fromkeys(REASONS, 0), **snap.dead_letters}.items()):
            dead.add_metric([reason], n)
        yield dead

        future = CounterMetricFamily(
            "driftline_future_timestamps_total",
            "Events more than an hour ahead of their Kafka record; their record time is used",
            labels=["stream"],
        )
        future_counts: dict[str, int] = {**dict.fromkeys(STREAMS, 0), **snap.future_timestamps}
        for stream, n in sorted(future_counts.items()):
            future.add_metric([stream], n)
        yield future

        last = GaugeMetricFamily(
            "driftline_last_event_timestamp_seconds",
            "Event time of the newest valid event seen, by stream",
            labels=["stream"],
        )
        for stream in STREAMS:
            if stream in snap.last_event_timestamp:
                last.add_metric([stream], snap.last_event_timestamp[stream])
        yield last

        cumulative = list(accumulate(snap.batch_bucket_counts))
        bounds = [repr(b) for b in BATCH_DURATION_BUCKETS] + ["+Inf"]
        yield HistogramMetricFamily(
            "driftline_batch_duration_seconds",
            "Time to process one poll batch, from poll return to commit",
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=snap.batch_sum,
        )

        lag = GaugeMetricFamily(
            "driftline_consumer_lag",
            "Records behind the partition's high-water mark",
            labels=["topic", "partition"],
        )
        for (topic, partition), n in sorted(snap.consumer_lag.items()):
            lag.add_metric([topic, str(partition)], n)
        yield lag

        overflow = CounterMetricFamily(
            "driftline_label_overflow_total",
            "Values mapped to __other__ because a label reached its cap",
            labels=["label"],
        )
        for label, n in sorted({"model": 0, **snap.label_overflow}.items()):
            overflow.add_metric([label], n)
        yield overflow

        errors = CounterMetricFamily(
            "driftline_kafka_errors_total",
            "Kafka client errors handled by the daemon, by kind",
            labels=["kind"],
        )
        for kind, n in sorted({**dict.fromkeys(KAFKA_ERROR_KINDS, 0), **snap.kafka_errors}.items()):
            errors.add_metric([kind], n)
        yield errors

        yield CounterMetricFamily(
            "driftline_checkpoints_total",
            "Checkpoints of the state written durably",
            value=snap.checkpoints,
        )
        failures = CounterMetricFamily(
            "driftline_checkpoint_failures_total",
            "Checkpoints that could not be written (write), fetched (read) or used "
            "(corrupt, incompatible)",
            labels=["kind"],
        )
        failure_counts = {**dict.fromkeys(CHECKPOINT_FAILURE_KINDS, 0), **snap.checkpoint_failures}
        for kind, n in sorted(failure_counts.items()):
            failures.add_metric([kind], n)
        yield failures
        if snap.checkpoint_last is not None:
            yield GaugeMetricFamily(
                "driftline_checkpoint_last_success_timestamp_seconds",
                "When the last checkpoint was written",
                value=snap.checkpoint_last,
            )
            yield GaugeMetricFamily(
                "driftline_checkpoint_size_bytes",
                "Size of the last checkpoint written (compressed)",
                value=snap.checkpoint_bytes,
            )

        yield GaugeMetricFamily(
            "driftline_ready",
            "1 when connected to Kafka with partitions assigned",
            value=1 if snap.ready else 0,
        )


def make_registry(telemetry: Telemetry, version: str, *collectors: Collector) -> CollectorRegistry:
    """A fresh registry holding only driftline's collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(telemetry, version))
    for collector in collectors:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``."""
    return generate_latest(registry)
