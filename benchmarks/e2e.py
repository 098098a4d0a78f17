"""End-to-end throughput, CPU, memory and latency of driftline against a real broker.

Run ``python benchmarks/e2e.py [--events N] [--pairs P] [--no-floor] [--rate R]
[--latency-seconds S] [--quick] [--profile | --profile-only] [--bootstrap HOST:PORT]
[--client kafka-python|confluent|both] [--write benchmarks/RESULTS-e2e.md]``.

Method
------
One run, one broker (the embedded Tansu broker from :class:`monitor.local_broker.LocalBroker`
on a free loopback port, unless ``--bootstrap`` names one), fresh topics with random names:

1. **produce**: ``N`` predictions (20 numeric and 5 categorical features, a score, a
   segment) of four models, outcomes for about 70 % of them (delayed by minutes, in event
   time) and conversion signals for about 10 %, keyed by model, in event-time order,
   with event timestamps over the hour before the run. kafka-python producer with a
   large ``linger_ms`` and ``batch_size``.
2. **raw ceiling (a)**: a bare kafka-python ``KafkaConsumer`` in a child process, in its
   own group, with the daemon's consumer settings (see
   :class:`monitor.kafka_io.KafkaSource`: default fetch sizes, ``max_records`` =
   ``kafka.max_poll_records``, the same poll timeout and group timeouts), reads the three
   topics and only decodes each value (``json.loads`` unless ``--raw-decoder``) until
   every record is read. It reports its own CPU time (``time.process_time``, all
   threads) and peak RSS (``ru_maxrss``).
3. **driftline (b)**: ``python -m monitor run`` in a child process, configured by
   ``DRIFTLINE_*`` variables (topics, group, HTTP port, state directory), all default
   detectors, local checkpoints. The benchmark scrapes ``/metrics`` every
   ``--scrape-interval`` seconds until ``driftline_events_total`` sums to everything
   produced. Events/s are given from the first scrape that counted an event to the
   first that counted them all (the "processing" rate, comparable with the raw rate
   from its first record to its last) and from the process start. CPU is the child's
   ``utime + stime`` from ``/proc/<pid>/stat`` (all threads); peak RSS is ``VmHWM``.
   Between them, unless ``--no-floor``, **the floor (f)**: the same ``driftline run``
   with ``Pipeline.apply`` replaced by a no-op in its process (every event counted
   "ok", no model): source, decoding, validation, loop, counts, checkpoints and HTTP
   without any monitoring. (b) less (f) is what the monitoring costs per event, and the
   report gives what 0.8x the bare consumer's rate would leave for it.
   Steps 2 and 3 run ``--pairs`` times (3 by default), (a), (f) then (b), each in a
   fresh group over the same records: the load of a shared machine drifts between runs
   (four runs of the bare consumer have measured 12.7 to 19.5 CPU µs per record in one
   session), so the ratio is taken within each pair and reported as the median.
4. **latency (d)**: with the daemon caught up, the benchmark produces at ``--rate``
   events/s for ``--latency-seconds`` (the same mix of streams; each event stamped with
   the wall time at sending) and logs the monotonic send time of every event, while a
   thread scrapes ``/metrics`` every 100 ms. Event ``i`` (in send order) counts as seen at
   the first scrape (its response time) whose count, less the count before the phase,
   is at least ``i``; its latency is that time less its send time. This is exact when
   the daemon counts events in send order, and an approximation otherwise (it reads
   three topics, two partitions each). A second phase (``--also-rate``, by default half
   the throughput driftline just showed) gives the latency without a growing backlog.
   The producer is a single kafka-python producer (``linger_ms`` 5) in the benchmark's
   process: when it cannot keep up, the achieved rate is reported beside the asked one.

``--client`` picks the daemon's ``kafka.client`` (kafka-python by default). With
``confluent`` or ``both``, a bare confluent-kafka consumer (**a2**) with the daemon's
librdkafka properties (:func:`monitor.confluent_io.consumer_config`) reads the same
records after (a), ``consume()`` batches of ``kafka.max_poll_records``, each value
decoded; ``confluent`` runs (b) and (d) with ``kafka.client: confluent``; ``both`` runs
(b) and (d) with kafka-python, stops that daemon, then starts it again with
``kafka.client: confluent`` (**b2**: a fresh group, its own state directory) over the same
records and those the latency phases added, and reports its throughput beside (b), as a
ratio to the same raw kafka-python ceiling (a) and to (a2).

Everything shares the machine's cores: the broker, the producer, the consumer under test
and the benchmark's scraper. The broker's CPU per phase is reported when the benchmark
started it.

``--profile`` (or ``--profile-only``, without a broker) runs the daemon's batch path in
process over the same kind of events: :class:`monitor.replay.FileSource` over an
in-memory JSON-lines stream feeding :meth:`monitor.service.Service.process_batch` and
``tick`` (what :func:`monitor.replay.replay` does, but ticking on wall time as the
daemon does, with each batch's records put topic by topic as kafka-python hands a poll
over, and the garbage collector set as the daemon sets it), after a warm-up in which
every model learns its reference; once without
the profiler for the wall-clock cost, once under ``cProfile``. Self time is grouped by
area from the file (and function) each function is defined in; time in library and
built-in functions (numpy, the standard library) is charged to the areas of their
callers, in proportion to the time each caller spent in them. One checkpoint to a local
directory (as the loop makes it, without the profiler: the time it holds the loop, and
the time until it is durable, written by the writer thread) and scrapes of the metrics
registry are timed separately.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

from _common import without_notes

ROOT = Path(__file__).resolve().parents[1]
START_TIME_S = 1_700_000_000.0
MODELS = ("churn", "fraud", "upsell", "ltv")
NUMERIC = tuple(f"x{i:02d}" for i in range(20))
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "country": ("de", "fr", "us", "gb", "br", "in", "jp", "es"),
    "device": ("ios", "android", "web"),
    "plan": ("free", "basic", "pro", "team"),
    "channel": ("organic", "paid", "email", "partner", "referral"),
    "browser": ("chrome", "safari", "firefox", "edge", "samsung", "other"),
}
REGIONS = ("eu", "us", "apac")
OUTCOME_SHARE = 0.7
SIGNAL_SHARE = 0.1
SESSION_TIMEOUT_MS = 6000  # Tansu joins groups slowly with longer sessions
HEARTBEAT_INTERVAL_MS = 1000
_MIB = 1 << 20
_TICK = os.sysconf("SC_CLK_TCK")


# -- events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One event to send: its JSON without the timestamp, which is appended at sending."""

    stream: str  # predictions, outcomes, signals
    key: bytes  # the model: keyed by model, co-partitioned
    head: bytes  # '{..., ' ready for '"timestamp":<t>}'
    time_s: float  # its event time in the synthetic timeline (orders the events)

    def value(self, timestamp: float) -> bytes:
        return self.head + b'"timestamp":%.3f}' % timestamp


def _head(obj: Mapping[str, Any]) -> bytes:
    text = json.dumps(obj, separators=(",", ":"))
    return (text[:-1] + ",").encode()


def make_events(
    predictions: int,
    *,
    seed: int = 0,
    start_s: float = START_TIME_S,
    interval_s: float = 0.018,
    outcome_delay_s: float = 120.0,
    id_prefix: str = "p",
) -> list[Event]:
    """``predictions`` predictions ``interval_s`` apart from ``start_s``, outcomes for about
    70 % (exponential delay, mean ``outcome_delay_s``, capped at ten times that) and
    signals for about 10 % (seconds later), sorted by event time, up to the last
    prediction."""
    rng = random.Random(seed)
    events: list[Event] = []
    categories = list(CATEGORICAL.items())
    for i in range(predictions):
        model = MODELS[i % len(MODELS)]
        key = model.encode()
        t = start_s + i * interval_s
        features: dict[str, float | str | None] = {}
        for j, name in enumerate(NUMERIC):
            if rng.random() < 0.005:
                features[name] = None
            elif j < 5:
                features[name] = round(rng.gauss(0.0, 1.0), 4)
            elif j < 10:
                features[name] = round(rng.lognormvariate(3.0, 0.5), 2)
            elif j < 15:
                features[name] = rng.randint(0, 100)
            else:
                features[name] = round(rng.random(), 4)
        for name, values in categories:
            features[name] = values[min(int(rng.expovariate(1.0)), len(values) - 1)]
        score = round(rng.random(), 4)
        event_id = f"{id_prefix}-{i:09d}"
        head = _head(
            {
                "id": event_id,
                "model": model,
                "model_version": "v1",
                "features": features,
                "prediction": score,
                "segment": {"region": REGIONS[i % len(REGIONS)]},
            }
        )
        events.append(Event("predictions", key, head, t))
        if rng.random() < OUTCOME_SHARE:
            delay = min(rng.expovariate(1.0 / outcome_delay_s), 10 * outcome_delay_s)
            label = 1 if rng.random() < score else 0
            head = _head({"id": event_id, "model": model, "label": label})
            events.append(Event("outcomes", key, head, t + delay))
        if rng.random() < SIGNAL_SHARE:
            head = _head({"id": event_id, "model": model, "signal": "conversion", "value": 1})
            events.append(Event("signals", key, head, t + rng.uniform(1.0, 30.0)))
    events.sort(key=lambda e: e.time_s)
    # Outcomes and signals due after the last prediction have not happened yet.
    last = start_s + (predictions - 1) * interval_s
    while events and events[-1].time_s > last:
        events.pop()
    return events


def stream_counts(events: Sequence[Event]) -> dict[str, int]:
    counts = {"predictions": 0, "outcomes": 0, "signals": 0}
    for event in events:
        counts[event.stream] += 1
    return counts


# -- metrics, latency --------------------------------------------------------------------


def metric_sum(exposition: str, name: str) -> float:
    """The sum of every sample of ``name`` in a text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def events_total(exposition: str) -> float:
    """The sum of every ``driftline_events_total`` sample of a text exposition."""
    return metric_sum(exposition, "driftline_events_total")


def stall_window(polls: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """(duration, start, end) of the longest time between two polls that saw the count
    grow; zeros when it grew less than twice."""
    grew = [t for (t, count), (_, before) in zip(polls[1:], polls, strict=False) if count > before]
    gaps = [(b - a, a, b) for a, b in zip(grew, grew[1:], strict=False)]
    return max(gaps, default=(0.0, 0.0, 0.0))


def longest_stall(polls: Sequence[tuple[float, float]]) -> float:
    """The longest time between two polls that saw the count grow."""
    return stall_window(polls)[0]


def latencies(sends: Sequence[float], polls: Sequence[tuple[float, float]]) -> list[float]:
    """Latency of each event that a poll saw counted.

    ``sends[i]`` is the send time of event ``i + 1``; ``polls`` are ``(time, count)`` in
    time order, counts since the first event was sent. Event ``i + 1`` is seen at the
    first poll whose count is at least ``i + 1``. Events no poll saw are left out.
    """
    times: list[float] = []
    counts: list[float] = []
    best = float("-inf")
    for t, count in polls:
        if count > best:  # counts only grow; keep the first poll of each new maximum
            best = count
            times.append(t)
            counts.append(count)
    out: list[float] = []
    for i, sent in enumerate(sends):
        k = bisect.bisect_left(counts, i + 1)
        if k == len(counts):
            break
        out.append(times[k] - sent)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


# -- processes ------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read()
    fields = text[text.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def proc_peak_rss(pid: int) -> int:
    """VmHWM of ``pid`` in bytes."""
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def http_get(port: int, path: str, timeout_s: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


class Phases:
    """Wall time per phase, and the broker's CPU in it."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float | None]] = []
        self.broker_pid: int | None = None

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        cpu = self._broker_cpu()
        try:
            yield
        finally:
            after = self._broker_cpu()
            used = None if cpu is None or after is None else after - cpu
            self.rows.append((name, time.monotonic() - started, used))
            print(f"[{name}] {self.rows[-1][1]:.1f} s", file=sys.stderr, flush=True)

    def _broker_cpu(self) -> float | None:
        if self.broker_pid is None:
            return None
        try:
            return proc_cpu_s(self.broker_pid)
        except OSError:
            return None


# -- producing ---------------------------------------------------------------------------


def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def produce_all(
    bootstrap: str, topics: Mapping[str, str], events: Sequence[Event], stamp_now: bool = False
) -> float:
    """Send every event and wait for the acknowledgements; returns the seconds taken."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="e2e-producer",
        acks=1,
        linger_ms=50,
        batch_size=1 << 20,
        max_request_size=8 << 20,
    )
    failures: list[BaseException] = []
    started = time.monotonic()
    try:
        for event in events:
            future = producer.send(
                topics[event.stream],
                value=event.value(time.time() if stamp_now else event.time_s),
                key=event.key,
            )
            future.add_errback(failures.append)
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=30)
    if failures:
        raise RuntimeError(f"{len(failures)} sends failed; first: {failures[0]!r}")
    return time.monotonic() - started


# -- (a) raw consumer, in a child process --------------------------------------------------

RAW_CHILD = "--raw-consumer-child"
FLOOR_CHILD = "--floor-daemon-child"


def _decoder(name: str) -> Callable[[bytes], Any]:
    import msgspec

    decoders: dict[str, Callable[[bytes], Any]] = {
        "json": json.loads,
        "msgspec": msgspec.json.decode,
        "none": lambda value: None,
    }
    return decoders[name]


def raw_consume(config: Mapping[str, Any]) -> dict[str, Any]:
    """The child's work: consume ``expected`` records like the daemon does, decode only."""
    if config.get("client") == "confluent":
        return raw_consume_confluent(config)
    from kafka import KafkaConsumer
    from kafka.record import util as record_util

    decode = _decoder(config["decoder"])
    consumer = KafkaConsumer(
        *config["topics"],
        bootstrap_servers=config["bootstrap"],
        client_id="e2e-raw",
        group_id=config["group"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    expected = int(config["expected"])
    deadline = time.monotonic() + float(config["timeout_s"])
    read = 0
    first_t = first_cpu = None
    try:
        while read < expected and time.monotonic() < deadline:
            batches = consumer.poll(
                timeout_ms=config["poll_timeout_ms"], max_records=config["max_records"]
            )
            for records in batches.values():
                if first_t is None:
                    first_t, first_cpu = time.monotonic(), time.process_time()
                for record in records:
                    decode(record.value)
                read += len(records)
        end_t, end_cpu = time.monotonic(), time.process_time()
    finally:
        consumer.close(autocommit=False)
    crc_fast_path = getattr(record_util, "crc32c_c", None) is not None
    return _raw_result(read, (first_t, first_cpu), (end_t, end_cpu), crc_fast_path)


def _raw_result(
    read: int, first: tuple[float | None, float | None], end: tuple[float, float], crc: bool
) -> dict[str, Any]:
    """What the raw consumer child reports: records read, the (monotonic, CPU) times of
    the first record and of the end, its peak RSS, whether CRCs were checked natively."""
    return {
        "read": read,
        "first_t": first[0],
        "end_t": end[0],
        "cpu_first_s": first[1],
        "cpu_end_s": end[1],
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "crc_fast_path": crc,
    }


def raw_consume_confluent(config: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`raw_consume` with a bare confluent-kafka ``Consumer`` with the daemon's
    consumer properties (:func:`monitor.confluent_io.consumer_config`): ``consume``
    batches of ``max_records``, each value decoded."""
    from confluent_kafka import Consumer

    from monitor.config import KafkaSettings
    from monitor.confluent_io import consumer_config

    decode = _decoder(config["decoder"])
    kafka = KafkaSettings(
        bootstrap_servers=config["bootstrap"],
        group_id=config["group"],
        client_id="e2e-raw",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    consumer = Consumer(consumer_config(kafka))
    consumer.subscribe(list(config["topics"]))
    expected = int(config["expected"])
    deadline = time.monotonic() + float(config["timeout_s"])
    timeout_s = config["poll_timeout_ms"] / 1000
    read = 0
    first_t = first_cpu = None
    try:
        while read < expected and time.monotonic() < deadline:
            messages = consumer.consume(config["max_records"], timeout_s)
            if messages and first_t is None:
                first_t, first_cpu = time.monotonic(), time.process_time()
            for message in messages:
                if message.error() is None:
                    decode(message.value() or b"")
                    read += 1
        end_t, end_cpu = time.monotonic(), time.process_time()
    finally:
        consumer.close()
    # librdkafka checks CRCs in C.
    return _raw_result(read, (first_t, first_cpu), (end_t, end_cpu), crc=True)


@dataclass
class Throughput:
    events: int
    started_t: float  # process start (monotonic)
    first_t: float  # first record / first scrape with a count
    first_count: float  # events already counted at first_t
    end_t: float
    cpu_total_s: float
    cpu_window_s: float  # from first_t to end_t
    peak_rss: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Events/s from the first event seen to the last."""
        return (self.events - self.first_count) / max(self.end_t - self.first_t, 1e-9)

    @property
    def rate_from_start(self) -> float:
        return self.events / max(self.end_t - self.started_t, 1e-9)

    @property
    def cores(self) -> float:
        """CPU seconds per second from the first event seen to the last."""
        return self.cpu_window_s / max(self.end_t - self.first_t, 1e-9)

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_window_s / max(self.events - self.first_count, 1) * 1e6


def run_raw(
    bootstrap: str,
    topics: Sequence[str],
    expected: int,
    decoder: str,
    timeout_s: float,
    client: str = "kafka-python",
) -> Throughput:
    from monitor.config import KafkaSettings

    kafka = KafkaSettings()
    config = {
        "client": client,
        "bootstrap": bootstrap,
        "topics": list(topics),
        "group": f"e2e-raw-{uuid.uuid4().hex[:8]}",
        "expected": expected,
        "decoder": decoder,
        "timeout_s": timeout_s,
        "max_records": kafka.max_poll_records,
        "poll_timeout_ms": kafka.poll_timeout_ms,
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), RAW_CHILD, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=timeout_s + 60,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"raw consumer failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["read"] < expected or result["first_t"] is None:
        raise RuntimeError(
            f"raw consumer read {result['read']:,} of {expected:,} records in {timeout_s:.0f} s"
        )
    return Throughput(
        events=result["read"],
        started_t=started,
        first_t=result["first_t"],
        first_count=0,
        end_t=result["end_t"],
        cpu_total_s=result["cpu_end_s"],
        cpu_window_s=result["cpu_end_s"] - result["cpu_first_s"],
        peak_rss=result["peak_rss"],
        extra={"crc_fast_path": result["crc_fast_path"], "decoder": decoder, "client": client},
    )


# -- (b) the daemon ------------------------------------------------------------------------


def floor_daemon() -> int:
    """(f): ``driftline run`` whose pipeline does nothing (every event "ok", no model):
    the daemon's source, decoder, loop, counts, checkpoints and HTTP endpoints alone,
    configured like (b). The floor under (b) with any detectors."""
    from monitor import cli
    from monitor.pipeline import Pipeline

    def apply(self: Pipeline, events: Sequence[Any], *rest: Any) -> list[str]:
        return ["ok"] * len(events)

    Pipeline.apply = apply  # type: ignore[assignment,method-assign]
    return cli.main(["run"])


class DaemonProcess:
    """``python -m monitor run`` with its own topics, group, port and state directory."""

    def __init__(
        self,
        bootstrap: str,
        topics: Mapping[str, str],
        group: str,
        tmp: Path,
        client: str = "kafka-python",
        floor: bool = False,
    ) -> None:
        from monitor.local_broker import free_port

        self.command = [sys.executable, "-m", "monitor", "run"]
        if floor:
            self.command = [sys.executable, str(Path(__file__).resolve()), FLOOR_CHILD]

        self.port = free_port()
        self.log_path = tmp / "driftline.log"
        self.client = client
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")},
            "DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "DRIFTLINE_KAFKA__GROUP_ID": group,
            "DRIFTLINE_KAFKA__SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "DRIFTLINE_KAFKA__HEARTBEAT_INTERVAL_MS": str(HEARTBEAT_INTERVAL_MS),
            "DRIFTLINE_HTTP__PORT": str(self.port),
            "DRIFTLINE_STATE__DIR": str(tmp / "state"),
            **{f"DRIFTLINE_KAFKA__TOPICS__{k.upper()}": v for k, v in topics.items()},
        }
        if client != "kafka-python":
            self.env["DRIFTLINE_KAFKA__CLIENT"] = client
        self.process: subprocess.Popen[bytes] | None = None
        self.started_t = 0.0
        self.checkpoints = 0.0  # driftline_checkpoints_total at the last scrape
        self.checkpoint_started = 0.0  # epoch seconds the last checkpoint was begun
        self.checkpoint_bytes = 0.0

    def start(self, timeout_s: float = 60.0) -> None:
        with open(self.log_path, "ab") as log:
            self.started_t = time.monotonic()
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while http_get(self.port, "/healthz", 1.0)[0] != 200:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the daemon's /healthz did not answer in {timeout_s:.0f} s")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"the daemon exited with code {self.process.returncode}; log:\n{self.log()[-3000:]}"
            )

    def count(self) -> tuple[float, float] | None:
        """(response time, sum of driftline_events_total), or None if /metrics failed."""
        status, body = http_get(self.port, "/metrics")
        if status != 200:
            return None
        self.checkpoints = metric_sum(body, "driftline_checkpoints_total")
        self.checkpoint_started = metric_sum(
            body, "driftline_checkpoint_last_success_timestamp_seconds"
        )
        self.checkpoint_bytes = metric_sum(body, "driftline_checkpoint_size_bytes")
        return time.monotonic(), events_total(body)

    def stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def catch_up(
    daemon: DaemonProcess, expected: int, interval_s: float, timeout_s: float
) -> tuple[Throughput, list[float]]:
    """Scrape until every event is counted; returns the throughput and scrape durations."""
    deadline = time.monotonic() + timeout_s
    first: tuple[float, float, float] | None = None  # time, count, cpu
    scrapes: list[float] = []
    while True:
        daemon.check_alive()
        asked = time.monotonic()
        seen = daemon.count()
        if seen is not None:
            scrapes.append(seen[0] - asked)
            t, count = seen
            if first is None and count > 0:
                first = (t, count, proc_cpu_s(daemon.pid))
            if count >= expected:
                cpu = proc_cpu_s(daemon.pid)
                break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"driftline counted {seen[1] if seen else '?'} of {expected:,} events "
                f"in {timeout_s:.0f} s; log:\n{daemon.log()[-3000:]}"
            )
        time.sleep(max(0.0, interval_s - (time.monotonic() - asked)))
    assert first is not None
    result = Throughput(
        events=int(count),
        started_t=daemon.started_t,
        first_t=first[0],
        first_count=first[1],
        end_t=t,
        cpu_total_s=cpu,
        cpu_window_s=cpu - first[2],
        peak_rss=proc_peak_rss(daemon.pid),
    )
    return result, scrapes


# -- (d) latency ---------------------------------------------------------------------------


@dataclass
class Latency:
    rate: float  # asked
    achieved_rate: float
    sent: int
    seen: int
    p50_s: float
    p99_s: float
    max_s: float
    scrape_ms: float
    daemon_cores: float  # the daemon's CPU seconds per second over the phase
    stall_s: float  # the longest time the count did not grow
    stall_at: tuple[float, float]  # seconds from the phase start
    checkpoints: int  # written by the daemon during the phase
    written: list[tuple[float, float, float]]  # checkpoints: start, ≤ duration, bytes


def measure_latency(
    daemon: DaemonProcess,
    bootstrap: str,
    topics: Mapping[str, str],
    events: Sequence[Event],
    rate: float,
    settle_s: float = 30.0,
) -> Latency:
    from kafka import KafkaProducer

    baseline_seen = daemon.count()
    if baseline_seen is None:
        raise RuntimeError("/metrics did not answer before the latency phase")
    baseline = baseline_seen[1]
    checkpoints = daemon.checkpoints
    polls: list[tuple[float, float]] = []
    scrapes: list[float] = []
    # Checkpoints written in the phase: (monotonic start, seconds until a scrape showed it
    # done, bytes). The metric holds the time a checkpoint began; it changes when the
    # checkpoint is written, so the delay bounds the checkpoint's duration from above.
    written: list[tuple[float, float, float]] = []
    last_checkpoint = daemon.checkpoint_started
    stop = threading.Event()

    def poll() -> None:
        nonlocal last_checkpoint
        while not stop.is_set():
            asked = time.monotonic()
            seen = daemon.count()
            if seen is not None:
                scrapes.append(seen[0] - asked)
                polls.append((seen[0], seen[1] - baseline))
                if daemon.checkpoint_started != last_checkpoint:
                    last_checkpoint = daemon.checkpoint_started
                    ago = time.time() - last_checkpoint
                    written.append((seen[0] - ago, ago, daemon.checkpoint_bytes))
            stop.wait(max(0.0, 0.1 - (time.monotonic() - asked)))

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, client_id="e2e-latency", acks=1, linger_ms=5
    )
    sends: list[float] = []
    poller = threading.Thread(target=poll, name="scraper", daemon=True)
    cpu = proc_cpu_s(daemon.pid)
    poller.start()
    try:
        started = time.monotonic()
        for i, event in enumerate(events):
            ahead = started + i / rate - time.monotonic()
            if ahead > 0.002:
                time.sleep(ahead)
            sends.append(time.monotonic())
            producer.send(topics[event.stream], value=event.value(time.time()), key=event.key)
        producer.flush(timeout=60)
        sent_s = time.monotonic() - started
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline and (not polls or polls[-1][1] < len(events)):
            daemon.check_alive()
            time.sleep(0.1)
    finally:
        stop.set()
        poller.join(5)
        producer.close(timeout=10)
    cores = (proc_cpu_s(daemon.pid) - cpu) / (time.monotonic() - started)
    lat = latencies(sends, polls)
    stall, stall_from, stall_to = stall_window(polls)
    return Latency(
        rate=rate,
        achieved_rate=len(events) / sent_s,
        sent=len(events),
        seen=len(lat),
        p50_s=percentile(lat, 0.5),
        p99_s=percentile(lat, 0.99),
        max_s=max(lat) if lat else float("nan"),
        scrape_ms=1000 * sum(scrapes) / max(len(scrapes), 1),
        daemon_cores=cores,
        stall_s=stall,
        stall_at=(stall_from - started, stall_to - started),
        checkpoints=int(daemon.checkpoints - checkpoints),
        written=[(t - started, took, size) for t, took, size in written],
    )


# -- profile ---------------------------------------------------------------------------------

#: (path fragment, area): the first match names a function's area; functions defined
#: elsewhere (numpy, the standard library, built-ins) take their callers' areas.
#: Fragments are matched against "<file>:<function>".
AREAS: tuple[tuple[str, str], ...] = (
    ("/monitor/reference.py:profile_id", "model snapshots (reference profile_id hash)"),
    ("/monitor/model.py:_snapshot", "model snapshots (reference profile_id hash)"),
    ("msgspec", "decode + validation"),
    ("/monitor/events.py", "decode + validation"),
    ("/monitor/service.py", "service loop (batch bookkeeping)"),
    ("/monitor/join.py", "join + performance"),
    ("/monitor/outcomes.py", "join + performance"),
    ("/monitor/performance.py", "join + performance"),
    ("/detectors/", "pipeline + drift (per-feature updates)"),
    ("/monitor/pipeline.py", "pipeline + drift (per-feature updates)"),
    ("/monitor/model.py", "pipeline + drift (per-feature updates)"),
    ("/monitor/drift.py", "pipeline + drift (per-feature updates)"),
    ("/monitor/reference.py", "pipeline + drift (per-feature updates)"),
    ("/monitor/signals.py", "signals"),
    ("/monitor/alerts.py", "alerts"),
    ("/monitor/telemetry.py", "metrics + telemetry"),
    ("/monitor/metrics", "metrics + telemetry"),
    ("prometheus_client", "metrics + telemetry"),
    ("/monitor/checkpoint.py", "checkpoint"),
    ("/monitor/replay.py", "input (replay's file source)"),
    ("/monitor/", "other driftline"),
)

Func = tuple[str, int, str]


def area_of(func: Func) -> str | None:
    """The area a function's own code belongs to, or None for library code."""
    filename, _, name = func
    where = f"{filename}:{name}"
    for fragment, area in AREAS:
        if fragment in where if filename != "~" else fragment in name:
            return area
    return None


def areas(stats: Mapping[Func, Any]) -> dict[str, float]:
    """Self time by area; library functions' time split over their callers' areas."""
    memo: dict[Func, dict[str, float]] = {}
    active: set[Func] = set()

    def shares(func: Func) -> dict[str, float]:
        direct = area_of(func)
        if direct is not None:
            return {direct: 1.0}
        if func in memo:
            return memo[func]
        if func in active:
            return {"unattributed": 1.0}
        active.add(func)
        callers = stats[func][4] if func in stats else {}
        weights = {c: v[2] for c, v in callers.items() if c in stats and v[2] > 0}
        total = sum(weights.values())
        result: dict[str, float] = defaultdict(float)
        if total <= 0:
            result["unattributed"] = 1.0
        for caller, weight in weights.items():
            for area, share in shares(caller).items():
                result[area] += share * weight / total
        active.discard(func)
        memo[func] = dict(result)
        return memo[func]

    totals: dict[str, float] = defaultdict(float)
    for func, (_, _, tottime, _, _) in stats.items():
        for area, share in shares(func).items():
            totals[area] += tottime * share
    return dict(totals)


@dataclass
class ProfileReport:
    events: int  # profiled, after the warm-up
    warmup_events: int
    warmup_s: float
    batch_s: float  # wall time of the batch path, without the profiler
    profiled_s: float
    areas: dict[str, float]  # profiled seconds by area
    top: list[tuple[str, str, int, float, float]]  # area, function, calls, tottime, cumtime
    top_cumulative: list[tuple[str, str, int, float, float]]  # driftline's own functions
    checkpoint_held_s: float  # the loop's share: the state's text, then taking up the outcome
    checkpoint_durable_s: float  # from its beginning until it is durable and taken up
    checkpoint_bytes: int
    checkpoint_areas: dict[str, float]  # profiled, of the loop's share
    scrape_s: float  # one render of the registry
    scrape_bytes: int
    stream_counts: dict[str, int]


def _batch_path(
    data: bytes, warmup: int, tmp: Path, profiler: cProfile.Profile | None
) -> tuple[
    float, float, Callable[[bool], tuple[float, float, int, dict[str, float]]], Callable[[], bytes]
]:
    """Run the daemon's batch path over the lines of ``data``: the first ``warmup``
    lines, then the rest under ``profiler`` (if any). Returns the seconds spent on each
    part, a checkpoint and a scrape function over the final state."""
    from monitor import __version__
    from monitor.checkpoint import LocalStore
    from monitor.config import Settings
    from monitor.metrics import make_registry, render
    from monitor.metrics_models import AlertCollector, ModelCollector
    from monitor.pipeline import Pipeline
    from monitor.replay import FileSource
    from monitor.service import Service
    from monitor.telemetry import Telemetry

    settings = Settings.model_validate({"state": {"dir": str(tmp)}})
    telemetry = Telemetry()
    pipeline = Pipeline(settings)
    source = FileSource(io.BytesIO(data), settings, START_TIME_S)
    service = Service(
        settings,
        telemetry,
        lambda stop, beat: source,
        pipeline=pipeline,
        # Alerts and snapshots on wall time, as in the daemon (a replay uses event time,
        # which here runs ~40x faster than the wall clock and would tick that much more).
        wall=time.time,
        store=LocalStore(tmp),
    )
    stop = threading.Event()
    batch = settings.kafka.max_poll_records
    spent = [0.0, 0.0]  # warm-up, steady state
    steady = False
    while True:
        warming = source.lines < warmup
        if not warming and not steady:
            # The last rows of the warm-up wait in the models' queues: learn them (and
            # hash the new references) before the steady state is timed.
            service.tick(source, force=True)
            steady = True
        records = source.poll(0, min(batch, warmup - source.lines) if warming else batch)
        if not records:
            break
        # As kafka-python hands a poll over: partition by partition, each in order.
        records.sort(key=_TOPIC)
        profiling = profiler is not None and not warming
        started = time.perf_counter()
        if profiling:
            profiler.enable()  # type: ignore[union-attr]
        service.process_batch(source, records, stop)
        service.tick(source)
        if profiling:
            profiler.disable()  # type: ignore[union-attr]
        spent[0 if warming else 1] += time.perf_counter() - started
    service.tick(source, force=True)
    registry = make_registry(
        telemetry,
        __version__,
        ModelCollector(pipeline.snapshots),
        AlertCollector(service.alert_view, pipeline.snapshots),
    )

    def checkpoint(profiled: bool) -> tuple[float, float, int, dict[str, float]]:
        """One checkpoint as the loop makes it: the seconds it holds the loop (making the
        text; taking up the outcome), the seconds until it is durable and taken up, its
        bytes, and the areas of the loop's share (if ``profiled``)."""
        profile = cProfile.Profile()  # sees the loop's thread only
        started = time.perf_counter()
        if profiled:
            profile.enable()
        assert service.begin_checkpoint(source)
        profile.disable()
        held = time.perf_counter() - started
        while True:  # what the loop does at each iteration, here every millisecond
            taking = time.perf_counter()
            if profiled:
                profile.enable()
            outcome = service.collect_checkpoint(source)
            profile.disable()
            if outcome is not None:
                break
            time.sleep(0.001)
        done = time.perf_counter()
        size = sum(p.stat().st_size for p in tmp.iterdir() if p.is_file())
        stats = areas(pstats.Stats(profile).stats) if profiled else {}  # type: ignore[attr-defined]
        return held + done - taking, done - started, size, stats

    return spent[0], spent[1], checkpoint, lambda: render(registry)


_TOPIC = attrgetter("topic")


@contextlib.contextmanager
def _daemon_gc() -> Iterator[None]:
    """The garbage collector set as ``driftline run`` sets it (:func:`monitor.daemon.tune_gc`),
    then as it was."""
    from monitor.daemon import tune_gc

    thresholds = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def warmed_events(
    predictions: int, seed: int, start_s: float | None = None
) -> tuple[list[Event], int]:
    """The events of an in-process run: the predictions every model needs to learn its
    reference, then ``predictions`` more, with their outcomes and signals, at the e2e
    run's event rate (from ``start_s``, by default over the hour before now); and the
    index of the first event after the warm-up."""
    from monitor.config import Settings

    warm_predictions = Settings().defaults.reference_size * len(MODELS)
    total = warm_predictions + predictions
    interval_s = 3600.0 / 200_000
    if start_s is None:
        start_s = time.time() - total * interval_s - 1300.0
    events = make_events(total, seed=seed, start_s=start_s, interval_s=interval_s)
    seen = 0
    for index, event in enumerate(events):
        seen += event.stream == "predictions"
        if seen > warm_predictions:
            return events, index
    return events, len(events)


def run_profile(predictions: int, seed: int) -> ProfileReport:
    """Profile ``predictions`` predictions (and their outcomes and signals) after a
    warm-up long enough for every model to learn its reference."""
    events, warmup = warmed_events(predictions, seed)
    data = b"".join(e.value(e.time_s) + b"\n" for e in events)
    with tempfile.TemporaryDirectory(prefix="e2e-profile-") as tmp, _daemon_gc():
        warm_s, plain_s, checkpoint, _ = _batch_path(data, warmup, Path(tmp) / "plain", None)
        held_s, durable_s, checkpoint_bytes, _ = checkpoint(False)
        profiler = cProfile.Profile()
        _, profiled_s, checkpoint, scrape = _batch_path(
            data, warmup, Path(tmp) / "profiled", profiler
        )
        _, _, _, checkpoint_areas = checkpoint(True)
        renders = []
        for _ in range(5):
            started = time.perf_counter()
            body = scrape()
            renders.append(time.perf_counter() - started)
    stats: dict[Func, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    ranked = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:15]
    top = [_row(func, value) for func, value in ranked]
    own = [(f, v) for f, v in stats.items() if area_of(f) not in (None, "decode + validation")]
    skip = ("process_batch", "process", "tick")  # the entry points: everything is under them
    own = [(f, v) for f, v in own if not (f[2] in skip and "/monitor/" in f[0])]
    top_cumulative = [_row(f, v) for f, v in sorted(own, key=lambda fv: -fv[1][3])[:12]]
    return ProfileReport(
        events=len(events) - warmup,
        warmup_events=warmup,
        warmup_s=warm_s,
        batch_s=plain_s,
        profiled_s=profiled_s,
        areas=areas(stats),
        top=top,
        top_cumulative=top_cumulative,
        checkpoint_held_s=held_s,
        checkpoint_durable_s=durable_s,
        checkpoint_bytes=checkpoint_bytes,
        checkpoint_areas=checkpoint_areas,
        scrape_s=sorted(renders)[len(renders) // 2],
        scrape_bytes=len(body),
        stream_counts=stream_counts(events[warmup:]),
    )


def _row(func: Func, value: Any) -> tuple[str, str, int, float, float]:
    filename, line, name = func
    where = name if filename == "~" else f"{Path(filename).name}:{line}({name})"
    return area_of(func) or "(library)", where, int(value[1]), float(value[2]), float(value[3])


def profile_lines(report: ProfileReport) -> list[str]:
    total = sum(report.areas.values())
    per_event = report.batch_s / report.events * 1e6
    lines = [
        f"{report.events:,} events ({_counts(report.stream_counts)}) through "
        "Service.process_batch + tick, batches of kafka.max_poll_records, after a warm-up "
        f"of {report.warmup_events:,} events in which each model learns its reference:",
        f"- warm-up (reference learning), without the profiler: "
        f"{report.warmup_s / report.warmup_events * 1e6:.1f} µs/event, "
        f"{report.warmup_events / report.warmup_s:,.0f} events/s",
        f"- steady state, without the profiler: {report.batch_s:.2f} s, {per_event:.1f} µs/event, "
        f"{report.events / report.batch_s:,.0f} events/s on one core",
        f"- under cProfile: {report.profiled_s:.2f} s (the profiler inflates call-heavy code; "
        "the shares below are of the profiled time)",
        "",
        "| area | share | ≈ µs/event (scaled to the unprofiled time) |",
        "|---|---:|---:|",
    ]
    for area, seconds in sorted(report.areas.items(), key=lambda kv: kv[1], reverse=True):
        share = seconds / total if total else 0.0
        lines.append(f"| {area} | {share:.1%} | {share * per_event:.1f} |")
    lines += [
        "",
        "Top functions by self time (profiled):",
        "",
        "| function | area | calls | self s | cumulative s |",
        "|---|---|---:|---:|---:|",
    ]
    for area, name, calls, tottime, cumtime in report.top:
        lines.append(f"| `{name}` | {area} | {calls:,} | {tottime:.3f} | {cumtime:.3f} |")
    lines += [
        "",
        "driftline's functions by cumulative time (profiled; below process_batch, process, tick):",
        "",
        "| function | area | calls | self s | cumulative s |",
        "|---|---|---:|---:|---:|",
    ]
    for area, name, calls, tottime, cumtime in report.top_cumulative:
        lines.append(f"| `{name}` | {area} | {calls:,} | {tottime:.3f} | {cumtime:.3f} |")
    ckpt = ", ".join(
        f"{a} {s / max(sum(report.checkpoint_areas.values()), 1e-12):.0%}"
        for a, s in sorted(report.checkpoint_areas.items(), key=lambda kv: -kv[1])[:3]
    )
    lines += [
        "",
        f"- checkpoint of the final state (local store, without the profiler): it holds the "
        f"loop {report.checkpoint_held_s:.3f} s (the state's text, then taking up the "
        f"outcome; profiled: {ckpt}) and is durable {report.checkpoint_durable_s:.3f} s "
        f"after it began (compressed, written and fsynced on the writer thread), "
        f"{report.checkpoint_bytes / _MIB:.1f} MiB on disk; once every "
        "state.checkpoint_interval_s (30 s by default)",
        f"- one /metrics render of the final state: {report.scrape_s * 1000:.1f} ms, "
        f"{report.scrape_bytes / 1024:.0f} KiB; once per scrape",
    ]
    return lines


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n:,} {s}" for s, n in counts.items())


# -- the run -------------------------------------------------------------------------------


@dataclass
class Pair:
    """One run of the bare consumer (a), the floor (f, unless ``--no-floor``) and the
    daemon (b), in that order over the same records."""

    raw: Throughput
    daemon: Throughput
    floor: Throughput | None = None

    @property
    def ratio(self) -> float:
        """Events/s of the daemon over those of the bare consumer."""
        return self.daemon.rate / self.raw.rate


@dataclass
class Results:
    command: str
    facts: dict[str, str]
    phases: Phases
    produced: dict[str, int] = field(default_factory=dict)
    produce_s: float = 0.0
    raw: Throughput | None = None  # of the last pair
    driftline: Throughput | None = None
    pairs: list[Pair] = field(default_factory=list)
    client: str = "kafka-python"  # kafka.client of the daemon (b)
    raw_confluent: Throughput | None = None  # (a2), unless --client kafka-python
    confluent: Throughput | None = None  # (b2), the daemon again with --client both
    scrape_ms: float = 0.0
    latency: list[Latency] = field(default_factory=list)
    profile: ProfileReport | None = None
    notes: list[str] = field(default_factory=list)


def machine_facts(confluent: bool = False) -> dict[str, str]:
    import kafka
    import msgspec

    from monitor.kafka_io import crc_fast_path

    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    facts = {
        "cores": f"{os.cpu_count()} ({cpu})",
        "python": platform.python_version(),
        "kafka-python": kafka.__version__,
        "crc32c extension active": "yes" if crc_fast_path() else "no (pure-Python CRC-32C)",
        "msgspec": msgspec.__version__,
        "driftline tree": tree_state(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if confluent:
        from monitor.confluent_io import client_version

        facts["confluent-kafka"] = client_version().removeprefix("confluent-kafka ")
    return facts


def tree_state() -> str:
    """The commit measured, and the daemon's files changed since (others edit them)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "monitor", "detectors"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown (no git)"
    dirty = sorted(line[3:] for line in changed if line.strip())
    return f"commit {head}" + (f", with uncommitted changes in {', '.join(dirty)}" if dirty else "")


def run_e2e(args: argparse.Namespace, results: Results) -> None:
    from monitor.local_broker import LocalBroker, free_port

    phases = results.phases
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="e2e-")))
        bootstrap = args.bootstrap
        if bootstrap is None:
            with phases("broker start"):
                broker = LocalBroker("127.0.0.1", free_port(), log_file=tmp / "tansu.log")
                broker.start()
                stack.callback(broker.stop)
                bootstrap = broker.bootstrap_servers
                phases.broker_pid = broker.pid
        suffix = uuid.uuid4().hex[:8]
        topics = {
            name: f"e2e-{name}-{suffix}"
            for name in ("predictions", "outcomes", "signals", "dead_letter", "alerts")
        }
        with phases("create topics"):
            create_topics(bootstrap, list(topics.values()), args.partitions)
        with phases("generate events"):
            span_interval = 3600.0 / max(args.events, 1)
            start = time.time() - 3600.0 - 1300.0
            events = make_events(
                args.events, seed=args.seed, start_s=start, interval_s=span_interval
            )
            results.produced = stream_counts(events)
        with phases("produce"):
            results.produce_s = produce_all(bootstrap, topics, events)
        total = len(events)
        del events
        streams = [topics["predictions"], topics["outcomes"], topics["signals"]]
        timeout_s = max(120.0, total / 1000)
        results.client = "confluent" if args.client == "confluent" else "kafka-python"

        def caught_up(
            label: str, name: str, which: str
        ) -> tuple[DaemonProcess, Throughput, list[float]]:
            """A daemon in a fresh group and state directory (``name``), started and
            caught up on every record; (f), the floor, if ``name`` says ``f``."""
            (tmp / name).mkdir()
            process = DaemonProcess(
                bootstrap,
                topics,
                f"e2e-{name}-{suffix}",
                tmp / name,
                results.client,
                floor=name.startswith("f"),
            )
            stack.callback(process.stop)
            with phases(f"{label} start (to /healthz){which}"):
                process.start()
            with phases(f"{label} catch-up{which}"):
                measured, scrapes = catch_up(process, total, args.scrape_interval, timeout_s)
            return process, measured, scrapes

        # (a) then (b), again and again over the same records (fresh groups): the machine's
        # load drifts between runs, so the ratio is taken within each pair, and the median.
        for number in range(1, args.pairs + 1):
            which = f" #{number}" if args.pairs > 1 else ""
            with phases(f"(a) raw consume{which}"):
                raw = run_raw(bootstrap, streams, total, args.raw_decoder, timeout_s)
            floor = None
            if args.floor:
                bare, floor, _ = caught_up("(f) floor", f"f{number}", which)
                bare.stop()
            if number == 1 and args.client != "kafka-python":
                with phases("(a2) raw consume, confluent-kafka"):
                    results.raw_confluent = run_raw(
                        bootstrap, streams, total, args.raw_decoder, timeout_s, "confluent"
                    )
            daemon, dl, scrapes = caught_up("(b) daemon", f"b{number}", which)
            results.pairs.append(Pair(raw, dl, floor))
            if number < args.pairs:  # the last one stays for the latency phases
                daemon.stop()
        results.raw, results.driftline = results.pairs[-1].raw, results.pairs[-1].daemon
        results.scrape_ms = 1000 * sum(scrapes) / max(len(scrapes), 1)
        rates = [args.rate]
        if args.also_rate == "auto":
            # A rate the daemon sustains here: latency without a growing backlog.
            rates.append(max(500.0, round(results.driftline.rate / 2 / 500) * 500))
        elif args.also_rate != "none":
            rates.append(float(args.also_rate))
        for number, rate in enumerate(rates if args.latency_seconds > 0 else []):
            n = int(rate * args.latency_seconds)
            per_prediction = 1 + OUTCOME_SHARE + SIGNAL_SHARE
            latency_events = make_events(
                int(n / per_prediction * 1.6) + 10,  # the tail is cut: outcomes not due yet
                seed=args.seed + 1 + number,
                interval_s=per_prediction / rate,
                outcome_delay_s=2.0,
                id_prefix=f"l{number}",
            )[:n]
            with phases(f"(d) latency at {rate:,.0f}/s"):
                results.latency.append(
                    measure_latency(daemon, bootstrap, topics, latency_events, rate)
                )
        with phases("daemon stop"):
            code = daemon.stop()
        if code not in (0, None):
            results.notes.append(f"the daemon exited with code {code} on SIGTERM")
        if args.client == "both":
            # The same topics (and what the latency phases added), a fresh group.
            produced = total + sum(x.sent for x in results.latency)
            (tmp / "confluent").mkdir()
            second = DaemonProcess(
                bootstrap, topics, f"e2e-driftline-c-{suffix}", tmp / "confluent", "confluent"
            )
            stack.callback(second.stop)
            with phases("(b2) daemon start, confluent-kafka"):
                second.start()
            with phases("(b2) daemon catch-up, confluent-kafka"):
                results.confluent, _ = catch_up(second, produced, args.scrape_interval, timeout_s)
            code = second.stop()
            if code not in (0, None):
                results.notes.append(f"the confluent daemon exited with code {code} on SIGTERM")
    results.facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())


def report_lines(results: Results) -> list[str]:
    lines: list[str] = []
    raw, dl, lat = results.raw, results.driftline, results.latency
    if results.produced:
        total = sum(results.produced.values())
        lines += [
            f"Produced {total:,} events ({_counts(results.produced)}) in "
            f"{results.produce_s:.1f} s: {total / results.produce_s:,.0f} events/s "
            "(kafka-python producer, linger_ms 50, batch_size 1 MiB, acks 1).",
            "",
        ]
    if raw is not None and dl is not None:
        crc = "crc32c extension" if raw.extra["crc_fast_path"] else "pure Python"
        decode = f"{raw.extra['decoder']} decode"
        confluent = ", kafka.client confluent" if results.client == "confluent" else ""
        raw2, dl2 = results.raw_confluent, results.confluent
        lines += [
            "| | events/s (first → last event) | events/s (from process start) | "
            "CPU s (window / total) | cores busy | CPU µs/event | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|---:|",
            _throughput_row(f"(a) raw kafka-python consumer + {decode}", raw),
            *(
                [_throughput_row(f"(a2) raw confluent-kafka consumer + {decode}", raw2)]
                if raw2
                else []
            ),
            _throughput_row(f"(b) driftline run, default detectors{confluent}", dl),
            _ratio_row("(c) ratio b / a", dl, raw),
            *([_ratio_row("(c2) ratio b / a2", dl, raw2)] if raw2 and confluent else []),
            *(
                [
                    _throughput_row(
                        "(b2) driftline run, default detectors, kafka.client confluent", dl2
                    ),
                    _ratio_row("(c2) ratio b2 / a", dl2, raw),
                    *([_ratio_row("(c3) ratio b2 / a2", dl2, raw2)] if raw2 else []),
                ]
                if dl2
                else []
            ),
            "",
            f"- raw consumer CRC path: {crc}",
            f"- driftline: first event counted {dl.first_t - dl.started_t:.1f} s after the process "
            f"started (imports, group join), {dl.first_count:,.0f} events counted at the first "
            f"scrape that saw any; mean /metrics scrape {results.scrape_ms:.1f} ms "
            "(scrapes are part of the daemon's CPU)",
            *(
                [
                    f"- (b2) ran after (b) stopped, over the same records in a fresh group; first "
                    f"event counted {dl2.first_t - dl2.started_t:.1f} s after its start"
                ]
                if dl2
                else []
            ),
            "",
        ]
    if len(results.pairs) > 1 or any(p.floor for p in results.pairs):
        lines += [*pair_lines(results.pairs), ""]
    if lat:
        lines += [
            "Event → metric latency (send → first /metrics scrape, every 100 ms, counting it):",
            "",
            "| events/s asked | achieved | events | p50 | p99 | max | seen | "
            "daemon CPU (cores) | mean scrape ms | longest stall | checkpoints |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for x in lat:
            lines.append(
                f"| {x.rate:,.0f} | {x.achieved_rate:,.0f} | {x.sent:,} | {x.p50_s:.3f} s | "
                f"{x.p99_s:.3f} s | {x.max_s:.3f} s | {x.seen:,} | {x.daemon_cores:.2f} | "
                f"{x.scrape_ms:.0f} | {x.stall_s:.2f} s | {x.checkpoints} |"
            )
        lines.append("")
        for x in lat:
            done = "; ".join(
                f"begun at +{t:.1f} s, seen done {took:.1f} s later, {size / _MIB:.0f} MiB"
                for t, took, size in x.written
            )
            lines.append(
                f"- at {x.rate:,.0f}/s: longest stall from +{x.stall_at[0]:.1f} s to "
                f"+{x.stall_at[1]:.1f} s after the phase began; checkpoints: {done or 'none seen'}"
            )
        lines.append("")
    if results.phases.rows:
        lines += ["| phase | wall s | broker CPU s |", "|---|---:|---:|"]
        for name, seconds, broker in results.phases.rows:
            lines.append(
                f"| {name} | {seconds:.1f} | {'' if broker is None else f'{broker:.1f}'} |"
            )
        lines.append("")
    if results.profile is not None:
        lines += ["### Profile of the batch path", "", *profile_lines(results.profile), ""]
    lines += [f"- note: {n}" for n in results.notes]
    return lines


def pair_lines(pairs: Sequence[Pair]) -> list[str]:
    """The table of the pairs (the table above shows the last one), their median ratio,
    and what the floor leaves for monitoring at 0.8x the bare consumer."""
    with_floor = all(p.floor is not None for p in pairs)
    runs = ["(a)", "(f)", "(b)"] if with_floor else ["(a)", "(b)"]

    def measured(p: Pair) -> list[Throughput]:
        floor = [p.floor] if with_floor and p.floor is not None else []
        return [p.raw, *floor, p.daemon]

    blank = [""] * len(runs)
    lines = [
        f"{' then '.join(runs)}, {len(pairs)} times over the same records (fresh groups); "
        "the table above shows the last (a) and (b):",
        "",
        _cells(["pair", *(f"{r} events/s" for r in runs), "ratio b / a"])
        + _cells([f"CPU µs/event {r}" for r in runs])[1:],
        "|---:|" + "---:|" * (2 * len(runs) + 1),
    ]
    for number, p in enumerate(pairs, start=1):
        rates = [f"{t.rate:,.0f}" for t in measured(p)]
        cpu = [f"{t.cpu_us_per_event:.1f}" for t in measured(p)]
        lines.append(_cells([str(number), *rates, f"{p.ratio:.2f}", *cpu]))
    ratios = [p.ratio for p in pairs]
    median = f"**{statistics.median(ratios):.2f}** ({min(ratios):.2f}–{max(ratios):.2f})"
    lines.append(_cells(["median", *blank, median, *blank]))
    if any(t.events <= t.first_count for p in pairs for t in measured(p)):
        lines += [
            "",
            "- some runs counted every event by their first scrape: their events/s show 0 "
            "(not measured); give --events more predictions",
        ]
    if with_floor:
        raw_us, floor_us, daemon_us = (
            statistics.median(t.cpu_us_per_event for t in column)
            for column in zip(*map(measured, pairs), strict=True)
        )
        lines += [
            "",
            f"- medians: the bare consumer {raw_us:.1f} CPU µs per event, the floor "
            f"{floor_us:.1f}, the daemon {daemon_us:.1f}: monitoring (b − f) costs "
            f"{daemon_us - floor_us:.1f} µs per event; at 0.8× the bare consumer's rate, one "
            f"core busy, the daemon could spend {raw_us / 0.8 - floor_us:.1f} µs on it",
        ]
    return lines


def _cells(values: Sequence[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _throughput_row(label: str, t: Throughput) -> str:
    return (
        f"| {label} | {t.rate:,.0f} | {t.rate_from_start:,.0f} | "
        f"{t.cpu_window_s:.1f} / {t.cpu_total_s:.1f} | {t.cores:.2f} | "
        f"{t.cpu_us_per_event:.1f} | {t.peak_rss / _MIB:.0f} |"
    )


def _ratio_row(label: str, t: Throughput, raw: Throughput) -> str:
    return (
        f"| {label} | **{t.rate / raw.rate:.2f}** | "
        f"{t.rate_from_start / raw.rate_from_start:.2f} | | | "
        f"{t.cpu_us_per_event / raw.cpu_us_per_event:.2f} | |"
    )


def markdown(results: Results) -> str:
    facts = [f"- {k}: {v}" for k, v in results.facts.items()]
    return (
        "\n".join(
            [
                "# End-to-end benchmark (issue 7)",
                "",
                "Generated by `benchmarks/e2e.py`; the method is in its docstring.",
                "",
                "```sh",
                results.command,
                "```",
                "",
                *facts,
                "",
                *report_lines(results),
            ]
        ).rstrip()
        + "\n"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="predictions to produce")
    parser.add_argument("--rate", type=float, default=10_000, help="events/s, latency phase")
    parser.add_argument(
        "--also-rate",
        default="auto",
        help="a second latency phase at this rate; auto: half driftline's throughput; none",
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="0 skips it")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="use this broker")
    parser.add_argument("--partitions", type=int, default=2, help="per event topic")
    parser.add_argument("--raw-decoder", choices=("json", "msgspec", "none"), default="json")
    parser.add_argument(
        "--client",
        choices=("kafka-python", "confluent", "both"),
        default="kafka-python",
        help="kafka.client of the daemon; both: the daemon again with confluent (b2)",
    )
    parser.add_argument(
        "--pairs", type=int, default=3, help="runs of (a) then (b); the ratio is their median"
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip (f), the daemon with a pipeline that does nothing",
    )
    parser.add_argument("--scrape-interval", type=float, default=0.5, help="s, catch-up")
    parser.add_argument("--profile", action="store_true", help="also profile the batch path")
    parser.add_argument("--profile-only", action="store_true", help="only the profile")
    parser.add_argument("--profile-events", type=int, default=28_000, help="predictions profiled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", action="append", default=[], help="add to the results")
    parser.add_argument("--write", type=Path, metavar="FILE", help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = min(args.events, 5_000)
        args.latency_seconds = min(args.latency_seconds, 3.0)
        args.rate = min(args.rate, 2_000)
        args.profile_events = min(args.profile_events, 3_000)
        args.pairs = 1
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.events < 1 or args.rate <= 0 or args.latency_seconds < 0 or args.partitions < 1:
        parser.error("--events, --rate and --partitions must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [RAW_CHILD]:
        print(json.dumps(raw_consume(json.loads(argv[1]))))
        return 0
    if argv[:1] == [FLOOR_CHILD]:
        return floor_daemon()
    args = parse_args(argv)
    results = Results(
        command=shlex.join(["python", "benchmarks/e2e.py", *without_notes(argv)]),
        facts=machine_facts(args.client != "kafka-python"),
        phases=Phases(),
        notes=list(args.note),
    )
    try:
        if not args.profile_only:
            run_e2e(args, results)
        if args.profile or args.profile_only:
            with results.phases("profile"):
                results.profile = run_profile(args.profile_events, args.seed)
    except (RuntimeError, OSError) as exc:
        print(f"e2e benchmark failed: {exc}", file=sys.stderr)
        return 1
    text = markdown(results)
    print(text)
    if args.write is not None:
        args.write.write_text(text)
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
