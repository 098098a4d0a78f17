"""Assembling the daemon: pipeline, service loop, metrics, status page, HTTP server.

Shared by ``driftline run`` and ``driftline demo``; imports are deferred so that
``driftline --help`` and configuration errors stay fast.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from monitor import __version__
from monitor.config import KafkaSettings, Settings
from monitor.errors import ConfigError, DriftlineError

if TYPE_CHECKING:
    from monitor.checkpoint import LocalStore, ShardStore
    from monitor.http import HttpServer
    from monitor.pipeline import Pipeline
    from monitor.reference import ModelReference
    from monitor.service import Service
    from monitor.source import EventSource
    from monitor.status import StatusBoard
    from monitor.telemetry import Telemetry

__all__ = ["Daemon", "build_daemon", "load_references", "start_local_broker", "tune_gc"]

log = logging.getLogger("driftline")

#: Allocations between two collections of the youngest generation (Python's is 700).
GC_THRESHOLD: Final = 10_000


@dataclass(frozen=True)
class Daemon:
    service: Service
    pipeline: Pipeline
    telemetry: Telemetry
    status: StatusBoard
    server: HttpServer


def build_daemon(settings: Settings, stack: ExitStack) -> Daemon:
    """Everything ``run`` needs, with the HTTP server started (and stopped by ``stack``)."""
    connect = _source_connect(settings.kafka)  # first: a missing client fails the start
    from monitor.http import HttpServer
    from monitor.metrics import CONTENT_TYPE, make_registry, render
    from monitor.metrics_models import AlertCollector, ModelCollector
    from monitor.pipeline import Pipeline
    from monitor.service import Service
    from monitor.status import StatusBoard
    from monitor.telemetry import Telemetry

    telemetry = Telemetry()
    pipeline = Pipeline(settings, load_references(settings))
    service: Service = Service(
        settings,
        telemetry,
        lambda stop, beat: connect(
            settings.kafka, stop, telemetry.kafka_error, beat, owner=service
        ),
        pipeline=pipeline,
        store=_state_store(settings, stack),
    )
    service.restore()
    registry = make_registry(
        telemetry,
        __version__,
        ModelCollector(pipeline.snapshots),
        AlertCollector(service.alert_view, pipeline.snapshots),
    )
    status = StatusBoard(pipeline.snapshots, service.alert_view, telemetry.snapshot)
    service.observers.append(status)
    try:
        server = HttpServer(
            settings.http.host,
            settings.http.port,
            metrics=lambda: (render(registry), CONTENT_TYPE),
            healthy=service.healthy,
            ready=service.ready,
            pages={
                "/": lambda: (status.html(), "text/html; charset=utf-8"),
                "/status.json": lambda: (status.json(), "application/json"),
            },
        )
    except OSError as exc:
        raise DriftlineError(
            f"cannot serve HTTP on {settings.http.host}:{settings.http.port}: {exc.strerror}"
        ) from None
    server.start()
    stack.callback(server.stop)
    log.info(
        "serving the status page, /metrics, /healthz and /readyz on http://%s:%d",
        settings.http.host,
        server.port,
    )
    return Daemon(service, pipeline, telemetry, status, server)


def _source_connect(kafka: KafkaSettings) -> Callable[..., EventSource | None]:
    """The ``connect`` of the event source that ``kafka.client`` names."""
    if kafka.client == "confluent":
        try:
            from monitor.confluent_io import ConfluentSource, client_version
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] != "confluent_kafka":
                raise
            raise DriftlineError(
                "kafka.client is confluent, but the confluent-kafka package is not installed; "
                "install it with: pip install 'driftline[confluent]'"
            ) from None
        log.info("Kafka client (kafka.client: confluent): %s", client_version())
        return ConfluentSource.connect
    from monitor.kafka_io import KafkaSource, client_version, crc_fast_path

    log.info("Kafka client (kafka.client: kafka-python): %s", client_version())
    if not crc_fast_path():
        log.warning(
            "kafka-python is checking CRCs in pure Python (about 7x slower); "
            "install the crc32c package"
        )
    return KafkaSource.connect


def tune_gc() -> None:
    """Set the garbage collector for a long-running loop over events.

    What is built by now (modules, references, a restored state) lives as long as the
    process: frozen, collections no longer scan it. Events make many short-lived
    objects and next to no reference cycles: the youngest generation is collected
    every 10,000 allocations instead of 700 (benchmarks/e2e.py measured the
    difference).
    """
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


def _state_store(settings: Settings, stack: ExitStack) -> LocalStore | ShardStore | None:
    """The checkpoint store the settings name."""
    from monitor.checkpoint import LocalStore
    from monitor.kafka_io import KafkaStateStore

    state = settings.state
    if state.store == "none":
        return None
    if state.store == "local":
        return LocalStore(state.dir)
    store = KafkaStateStore(settings.kafka, state.topic)
    stack.callback(store.close)
    return store


def load_references(settings: Settings) -> dict[str, ModelReference]:
    """The reference files named in the settings; a bad one fails the start."""
    from monitor.reference import load_reference

    references = {}
    for name, model in settings.models.items():
        if model.profile is None:
            continue
        key = f"models.{name}.profile"
        try:
            reference = load_reference(model.profile)
        except DriftlineError as exc:
            raise ConfigError(key, str(exc)) from None
        if reference.model != name:
            raise ConfigError(key, f"{model.profile} is the reference of model {reference.model!r}")
        references[name] = reference
        log.info(
            "model %s: reference %s (profile id %s, %d rows)",
            name,
            model.profile,
            reference.profile_id,
            reference.features.n_rows,
        )
    return references


def start_local_broker(settings: Settings, stack: ExitStack) -> str:
    """Start the embedded Tansu broker where the settings point, with the topics."""
    from monitor.kafka_io import ensure_topics
    from monitor.local_broker import LocalBroker

    servers = settings.kafka.bootstrap_servers
    first = servers if isinstance(servers, str) else servers[0]
    host, _, port = first.rpartition(":")
    if not port.isdigit():
        raise ConfigError("kafka.bootstrap_servers", f"expected HOST:PORT, got {first!r}")
    if host in ("localhost", ""):
        host = "127.0.0.1"
    broker = LocalBroker(host, int(port)).start()
    stack.callback(broker.stop)
    topics = settings.kafka.topics
    ensure_topics(
        settings.kafka,
        [topics.predictions, topics.outcomes, topics.signals, topics.dead_letter, topics.alerts],
    )
    log.info("local broker (Tansu, in memory) listening on %s", broker.bootstrap_servers)
    return broker.bootstrap_servers
