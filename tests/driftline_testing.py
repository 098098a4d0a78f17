"""Helpers shared by the integration tests: names, producing, polling, the daemon process."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import Settings
from monitor.local_broker import free_port
from monitor.replay import replay

T = TypeVar("T")

# Tansu joins consumer groups slowly unless the session timeout is low.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000
#: The values of kafka.client: the tests of the Kafka I/O run with each.
CLIENTS = ("kafka-python", "confluent")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(
    condition: Callable[[], T],
    timeout_s: float = 60.0,
    what: str = "condition",
    interval_s: float = 0.1,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what}; last: {last!r}"
            )
        time.sleep(interval_s)
        last = condition()
    return last


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(exposition: str) -> Samples:
    """``{(name, labels): value}`` of a Prometheus text exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the series ``name{labels}`` (exactly those labels), if present."""
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str, label: str, **labels: str) -> dict[str, float]:
    """``{value of label: sample}`` over the series of ``name`` that match ``labels``."""
    wanted = set(labels.items())
    return {
        dict(lbls)[label]: v for (n, lbls), v in samples.items() if n == name and wanted <= lbls
    }


def replay_samples(events: Iterable[dict[str, Any]], settings: Settings | None = None) -> Samples:
    """The metrics after ``driftline replay`` of ``events`` (the daemon's batch path)."""
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    result = replay(io.BytesIO(data), settings or Settings(), start_time_s=1_700_000_000.0)
    return parse_samples(result.metrics.decode())


@dataclass(frozen=True)
class TopicSet:
    """One test's topics (random names) and consumer group."""

    predictions: str = field(default_factory=lambda: unique("predictions"))
    outcomes: str = field(default_factory=lambda: unique("outcomes"))
    signals: str = field(default_factory=lambda: unique("signals"))
    dead_letter: str = field(default_factory=lambda: unique("dlq"))
    alerts: str = field(default_factory=lambda: unique("alerts"))
    group: str = field(default_factory=lambda: unique("group"))

    def all(self) -> list[str]:
        return [self.predictions, self.outcomes, self.signals, self.dead_letter, self.alerts]

    def env(self) -> dict[str, str]:
        return {
            "DRIFTLINE_KAFKA__TOPICS__PREDICTIONS": self.predictions,
            "DRIFTLINE_KAFKA__TOPICS__OUTCOMES": self.outcomes,
            "DRIFTLINE_KAFKA__TOPICS__SIGNALS": self.signals,
            "DRIFTLINE_KAFKA__TOPICS__DEAD_LETTER": self.dead_letter,
            "DRIFTLINE_KAFKA__TOPICS__ALERTS": self.alerts,
            "DRIFTLINE_KAFKA__GROUP_ID": self.group,
        }


def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def produce(
    bootstrap: str,
    records: Iterable[tuple[str, bytes | None]],
    key: Callable[[bytes | None], bytes | None] = lambda value: None,
) -> int:
    """Send ``(topic, value)`` pairs keyed by ``key(value)``, wait for every ack;
    returns how many."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=8 << 20)
    try:
        # kafka-python refuses a record with neither key nor value: give tombstones a key.
        futures = [
            producer.send(topic, value=value, key=key(value) if value is not None else b"k")
            for topic, value in records
        ]
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=60)
        return len(futures)
    finally:
        producer.close()


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Any]:
    """Read ``topic`` from the beginning until ``expected`` records arrived (then a bit more)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=32 << 20,
    )
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        # One more poll: anything beyond `expected` would be a bug worth seeing.
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
    finally:
        consumer.close()
    return records


def committed_total(bootstrap: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)


#: Families that two runs over the same events agree on exactly when each model's
#: predictions come in one partition, in order (the rest describe the process, or depend
#: on how the outcome and signal topics interleave with the predictions).
ORDER_FREE = (
    "driftline_events_total",
    "driftline_joins_total",
    "driftline_dead_letters_total",
    "driftline_label_coverage_ratio",
    "driftline_label_delay_seconds_count",
    "driftline_feature_psi",
    "driftline_feature_ks_statistic",
    "driftline_feature_ks_pvalue",
    "driftline_feature_chi2_pvalue",
    "driftline_feature_missing_ratio",
    "driftline_feature_outside_ratio",
    "driftline_feature_drift",
    "driftline_prediction_psi",
    "driftline_model_drift",
    "driftline_windows_total",
    "driftline_drifted_windows_total",
    "driftline_feature_drift_windows_total",
    "driftline_reference_rows",
)


class Daemon:
    """``driftline run`` in a subprocess, with its HTTP endpoints."""

    def __init__(
        self,
        bootstrap: str,
        topics: TopicSet,
        tmp_path: Path,
        env: Mapping[str, str] | None = None,
        args: Iterable[str] = (),
    ) -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"driftline-{self.port}.log"
        self.env = {
            **os.environ,
            **topics.env(),
            "DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "DRIFTLINE_KAFKA__SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "DRIFTLINE_KAFKA__HEARTBEAT_INTERVAL_MS": str(HEARTBEAT_INTERVAL_MS),
            "DRIFTLINE_HTTP__PORT": str(self.port),
            "DRIFTLINE_STATE__DIR": str(tmp_path / "state"),
            **(env or {}),
        }
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", *self.args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(
            lambda: self.get("/healthz")[0] == 200 or self.process.poll() is not None,  # type: ignore[union-attr]
            30,
            "the daemon's /healthz",
        )
        assert self.process.poll() is None, f"daemon exited at start:\n{self.log()}"
        return self

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def samples(self) -> Samples:
        status, body = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        return parse_samples(body)

    def value(self, name: str, **labels: str) -> float:
        return self.samples().get((name, frozenset(labels.items())), 0.0)

    def events(self, **labels: str) -> float:
        """Sum of driftline_events_total over the series matching ``labels``."""
        return sum(
            v
            for (name, lbls), v in self.samples().items()
            if name == "driftline_events_total" and set(labels.items()) <= lbls
        )

    def terminate(self, timeout_s: float = 10.0) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if hasattr(self, "_log"):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class PrometheusServer:
    """A real Prometheus scraping ``targets`` every second, on a free loopback port."""

    def __init__(
        self,
        binary: str,
        targets: Iterable[str],
        tmp_path: Path,
        rule_files: Iterable[Path] = (),
        alertmanager: str | None = None,
    ) -> None:
        self.port = free_port()
        self.dir = tmp_path / f"prometheus-{self.port}"
        self.dir.mkdir()
        config = self.dir / "prometheus.yml"
        settings: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "driftline", "static_configs": [{"targets": list(targets)}]}
            ],
            "rule_files": [str(p) for p in rule_files],
        }
        if alertmanager is not None:
            settings["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]
            }
        config.write_text(json.dumps(settings))  # JSON is YAML
        self.args = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # Resolved alerts reach Alertmanager within seconds, not a minute.
            "--rules.alert.resend-delay=1s",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        self._log = open(self.dir / "prometheus.log", "ab")  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._get("/-/ready") is not None, 60, "Prometheus to be ready")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return bytes(r.read())
        except OSError:
            return None

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (empty when nothing matches yet)."""
        import json
        import urllib.parse

        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if body is None:
            return []
        reply = json.loads(body)
        assert reply["status"] == "success", reply
        result: list[dict[str, Any]] = reply["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


class AlertmanagerServer:
    """A real Alertmanager on a free loopback port, clustering off."""

    def __init__(self, binary: str, config: Mapping[str, Any], tmp_path: Path) -> None:
        self.port = free_port()
        self.dir = tmp_path / f"alertmanager-{self.port}"
        self.dir.mkdir()
        path = self.dir / "alertmanager.yml"
        path.write_text(json.dumps(config))
        self.args = [
            binary,
            f"--config.file={path}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> AlertmanagerServer:
        self._log = open(self.dir / "alertmanager.log", "ab")  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: _http_ok(f"http://{self.address}/-/ready"), 60, "Alertmanager")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus would (API v2)."""
        request = urllib.request.Request(
            f"http://{self.address}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 200


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


class WebhookReceiver:
    """Collects Alertmanager webhook notifications on a free loopback port."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        received, lock = self.notifications, self._lock

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification so far, in arrival order."""
        with self._lock:
            return [alert for n in self.notifications for alert in n["alerts"]]


@contextlib.contextmanager
def script_module(path: Path, name: str) -> Iterator[ModuleType]:
    """A script (``benchmarks/*.py``) imported as module ``name`` while the block runs."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while decorating
    sys.path.insert(0, str(path.parent))  # as when run: the scripts import their helpers
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(path.parent))
        del sys.modules[name]
