"""100,000 hostile records against the real daemon on a real broker.

The records, all from fixed seeds, mixed in one random order over the three topics:

- JSON of the wrong shape, drawn by hypothesis from a recursive JSON strategy with
  ``derandomize=True`` (so the same values every run): values that are not objects, and
  objects without the fields their stream requires; half of the objects carry a model
  name, so that they reach the schema check with one;
- valid events with one field removed or of the wrong type (schema errors);
- NaN, Infinity and out-of-range numbers where numbers go;
- three 10 MiB records (Tansu takes them; the topics are created with
  ``max.message.bytes`` raised so that an Apache Kafka broker would too) and a few just
  over the daemon's 1 MiB event cap;
- invalid UTF-8 (stray, overlong, truncated and surrogate byte sequences);
- lone surrogates as JSON escapes (``\\ud800``);
- deep nesting: in an ignored key beyond the parser's depth, in a feature, at the top;
- empty values and tombstones;
- valid events, which must be counted and not dead-lettered: one prediction each for
  tens of thousands of distinct model names (beyond ``limits.max_models`` they count
  under ``__other__``), and a declared model whose predictions carry 100,000 distinct
  feature names, 1,000 segment values, 50 versions, with outcomes and signals of 1,000
  distinct names.

Checked: the daemon never exits; every invalid record, and only those, is on the
dead-letter topic exactly once, unchanged, with the expected reason header;
``driftline_events_total`` counts them as invalid and the rest as ok; the series on
``/metrics`` stay under a bound computed from the configured caps, and the exposition
stays small. The figures are printed and recorded in ``benchmarks/RESULTS-faults.md``.
"""

from __future__ import annotations

import json
import math
import random
import string
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from driftline_testing import Daemon, TopicSet, consume_all, parse_samples, wait_for
from monitor.events import REASONS
from monitor.metrics import KAFKA_ERROR_KINDS
from monitor.model import LABEL_DELAY_BUCKETS
from monitor.performance import METRICS
from monitor.telemetry import BATCH_DURATION_BUCKETS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SEED = 20_251_123
TOTAL = 100_000
MIB = 1 << 20

MAX_MODELS = 20
MAX_FEATURES = 10
MAX_SEGMENT_VALUES = 5
MAX_SIGNALS = 5
MAX_VERSIONS = 3
WIDE = "wide"  # the declared model that gets the distinct feature names
CONFIG = f"""\
limits:
  max_event_bytes: {MIB}
  max_models: {MAX_MODELS}
  max_features: {MAX_FEATURES}
  max_segment_values: {MAX_SEGMENT_VALUES}
  max_signals: {MAX_SIGNALS}
  max_versions: {MAX_VERSIONS}
defaults:
  reference_size: 1000
  window_size: 500
models:
  {WIDE}:
    task: binary
    segments: [region]
"""
SEGMENT_KEYS = 1  # segments configured per model, at most

NAME_CHARS = string.ascii_letters + string.digits + "_.-"
REQUIRED = {"id", "model", "prediction", "label", "signal"}

#: Any JSON value, as hypothesis draws it.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


def wrong_shapes(n: int) -> list[Any]:
    """``n`` JSON values drawn by hypothesis, the same every run (``derandomize``)."""
    drawn: list[Any] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(JSON)
    def draw(value: Any) -> None:
        drawn.append(value)

    draw()
    return drawn


@dataclass(frozen=True)
class Hostile:
    topic: str
    value: bytes | None
    kind: str
    reason: str | None  # expected dead-letter reason; None: a valid event


class Generator:
    """The hostile records of one test, from one seeded ``random.Random``."""

    def __init__(self, topics: TopicSet, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.topics = topics
        self.streams = {
            "predictions": topics.predictions,
            "outcomes": topics.outcomes,
            "signals": topics.signals,
        }
        self._names: set[str] = set()
        self.models: set[str] = set()
        self.features: set[str] = set()
        self._n = 0

    def name(self, prefix: str = "") -> str:
        """A fresh valid-looking name, never returned before."""
        while True:
            size = self.rng.randint(1, 64 - len(prefix))
            name = prefix + "".join(self.rng.choices(NAME_CHARS, k=size))
            if name not in self._names and name != WIDE:
                self._names.add(name)
                return name

    def model(self) -> str:
        name = self.name()
        self.models.add(name)
        return name

    def feature(self) -> str:
        name = self.name("f")
        self.features.add(name)
        return name

    def event(self, stream: str, model: str | None = None) -> dict[str, Any]:
        """A valid event of ``stream`` with a fresh model name unless one is given."""
        self._n += 1
        model = model or self.model()
        if stream == "predictions":
            return {
                "id": f"h-{self._n}",
                "model": model,
                "timestamp": 1_763_790_000 + self._n * 0.01,
                "features": {self.feature(): self.rng.random(), self.feature(): "a"},
                "prediction": self.rng.random(),
            }
        if stream == "outcomes":
            return {"id": f"h-{self._n}", "model": model, "label": self.rng.randint(0, 1)}
        return {"model": model, "signal": "conversion", "value": 1}

    def record(self, stream: str, value: bytes | None, kind: str, reason: str | None) -> Hostile:
        return Hostile(self.streams[stream], value, kind, reason)

    def stream(self) -> str:
        return self.rng.choice(["predictions", "outcomes", "signals"])

    # -- the kinds ----------------------------------------------------------------

    def wrong_shape(self, value: Any) -> Hostile:
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in REQUIRED}
            if self.rng.random() < 0.5:
                value["model"] = self.model()
        return self.record(self.stream(), json.dumps(value).encode(), "wrong_shape", "schema")

    def mutated(self) -> Hostile:
        stream = self.stream()
        event = self.event(stream)
        required = {"predictions": "prediction", "outcomes": "label", "signals": "signal"}
        mutation = self.rng.randrange(6)
        if mutation == 0:
            del event[required[stream]]
        elif mutation == 1:
            event["id"] = self.rng.choice([42, None, [], {"a": 1}, ""])
            if stream == "signals" and event["id"] is None:
                event["id"] = ""
        elif mutation == 2:
            event[required[stream]] = self.rng.choice([{"a": 1}, [1, 2]])
        elif mutation == 3:
            event["timestamp"] = self.rng.choice(["yesterday", -5, [1], {"t": 1}])
        elif mutation == 4:
            event["model"] = self.rng.choice(["bad model!", "x" * 65, "", 7, "é"])
        else:
            event["features"] = self.rng.choice([[1, 2], "f", {"f": {"nested": 1}}])
            if stream != "predictions":
                event["timestamp"] = "not a time"
        return self.record(stream, json.dumps(event).encode(), "mutated", "schema")

    def non_finite(self) -> Hostile:
        stream = self.stream()
        event = self.event(stream)
        field = {"predictions": "prediction", "outcomes": "label", "signals": "value"}[stream]
        if self.rng.random() < 0.2:
            field = "timestamp"
        token = self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
        if token.endswith("e999") and field == "timestamp":
            token = "1e999"
        event[field] = "@@"
        text = json.dumps(event).replace('"@@"', token)
        return self.record(stream, text.encode(), "non_finite", "non_finite")

    def too_large(self, size: int) -> Hostile:
        event = self.event("predictions")
        event["padding"] = "@@"
        head, tail = json.dumps(event).encode().split(b"@@")
        pad = b"x" * (size - len(head) - len(tail))
        return self.record("predictions", head + pad + tail, "too_large", "too_large")

    def invalid_utf8(self) -> Hostile:
        stream = self.stream()
        text = json.dumps(self.event(stream)).encode()
        bad = self.rng.choice(
            [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80"]
        )
        at = text.index(b'"model": "') + len(b'"model": "')
        return self.record(stream, text[:at] + bad + text[at:], "invalid_utf8", "invalid_utf8")

    def lone_surrogate(self) -> Hostile:
        stream = self.stream()
        event = self.event(stream)
        surrogate = f"\\u{self.rng.randint(0xD800, 0xDFFF):04x}"
        where = self.rng.choice(["model", "id", "feature", "value"])
        if where == "model" or (stream == "signals" and where == "id"):
            event["model"] = "@@" + event["model"]
        elif where == "id" or stream != "predictions":
            event["id"] = "@@"
        elif where == "feature":
            event["features"]["@@"] = 1.0
        else:
            event["features"][self.feature()] = "@@"
        value = json.dumps(event).replace("@@", surrogate).encode()
        return self.record(stream, value, "lone_surrogate", not_json(value))

    def deep(self) -> Hostile:
        stream = self.stream()
        event = self.event(stream)
        where = self.rng.choice(["ignored", "ignored", "feature", "top"])
        depth = self.rng.randint(1_000, 100_000)
        nested = "[" * depth + "]" * depth
        if where == "ignored":
            event["nested"] = "@@"
            value = json.dumps(event).replace('"@@"', nested).encode()
            return self.record(stream, value, "deep", "too_deep")
        if where == "feature":
            stream, event = "predictions", self.event("predictions")
            event["features"] = {"deep": "@@"}
            value = json.dumps(event).replace('"@@"', nested).encode()
            return self.record(stream, value, "deep", "schema")
        return self.record(stream, nested.encode(), "deep", "schema")

    def empty(self) -> Hostile:
        return self.record(self.stream(), self.rng.choice([None, b""]), "empty", "empty")

    def distinct_model(self) -> Hostile:
        value = json.dumps(self.event("predictions")).encode()
        return self.record("predictions", value, "distinct_model", None)

    def wide(self, i: int) -> list[Hostile]:
        """One prediction of the declared model with 25 fresh feature names, plus its
        outcome (one in four) and a signal of a fresh name (one in four)."""
        features: dict[str, Any] = {self.feature(): self.rng.random() for _ in range(25)}
        features["x"] = self.rng.gauss(0.0, 1.0)
        prediction = {
            "id": f"w-{i}",
            "model": WIDE,
            "model_version": f"v{self.rng.randrange(50)}",
            "timestamp": 1_763_790_000 + i,
            "features": features,
            "prediction": self.rng.random(),
            "segment": {"region": f"r{self.rng.randrange(1000)}"},
        }
        out = [self.record("predictions", json.dumps(prediction).encode(), "wide", None)]
        if i % 4 == 0:
            outcome = {"id": f"w-{i}", "model": WIDE, "label": self.rng.randint(0, 1)}
            out.append(self.record("outcomes", json.dumps(outcome).encode(), "wide", None))
        if i % 4 == 1:
            signal = {"model": WIDE, "signal": self.name("s"), "timestamp": 1_763_790_000 + i}
            out.append(self.record("signals", json.dumps(signal).encode(), "wide", None))
        return out


def not_json(value: bytes) -> str:
    """The reason the daemon gives a record that does not parse as JSON: ``non_finite``
    when Python's lenient parser, which takes NaN and Infinity, reads it and finds one;
    else ``invalid_json``."""
    found = []
    try:
        json.loads(value, parse_constant=lambda token: found.append(token))
    except ValueError:
        return "invalid_json"
    return "non_finite" if found else "invalid_json"


def hostile_records(topics: TopicSet) -> tuple[list[Hostile], Generator]:
    gen = Generator(topics)
    records: list[Hostile] = []
    # 500 hypothesis draws (about 4 s; 2,000 would take 20 s), each sent 20 times on
    # random topics, half of the objects with a fresh model name each time.
    records += [gen.wrong_shape(v) for v in wrong_shapes(500) for _ in range(20)]
    records += [gen.mutated() for _ in range(15_000)]
    records += [gen.non_finite() for _ in range(5_000)]
    records += [gen.too_large(10 * MIB) for _ in range(3)]
    records += [gen.too_large(MIB + gen.rng.randint(1, 1000)) for _ in range(20)]
    records += [gen.invalid_utf8() for _ in range(5_000)]
    records += [gen.lone_surrogate() for _ in range(5_000)]
    records += [gen.deep() for _ in range(200)]
    records += [gen.empty() for _ in range(500)]
    for i in range(4_000):
        records += gen.wide(i)
    records += [gen.distinct_model() for _ in range(TOTAL - len(records))]
    gen.rng.shuffle(records)
    return records, gen


def create(bootstrap: str, topics: TopicSet) -> None:
    """The test's topics, taking records of up to 16 MiB (Tansu ignores the setting)."""
    big = {"max.message.bytes": str(16 * MIB)}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topics.predictions, 2, 1, topic_configs=big)]
            + [NewTopic(t, 1, 1, topic_configs=big) for t in topics.all()[1:]]
        )
    finally:
        admin.close()


def produce_all(bootstrap: str, records: list[Hostile]) -> list[tuple[str, int, int]]:
    """Send every record; returns where each landed (topic, partition, offset)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_request_size=16 * MIB, acks="all"
    )
    try:
        # kafka-python sends no record without key and value: tombstones get a key.
        futures = [producer.send(r.topic, value=r.value, key=b"k") for r in records]
        producer.flush(timeout=120)
        metadata = [f.get(timeout=60) for f in futures]
    finally:
        producer.close()
    return [(m.topic, m.partition, m.offset) for m in metadata]


#: The most values each label takes, from the configured caps; ``model`` adds
#: ``__other__`` and ``__unknown__``.
LABEL_CAPS: dict[str, int] = {
    "model": MAX_MODELS + 2,
    "feature": MAX_FEATURES,
    "signal": MAX_SIGNALS + 1,
    "version": MAX_VERSIONS + 1,
    "segment": SEGMENT_KEYS,
    "value": MAX_SEGMENT_VALUES + 1,
    "metric": max(len(names) for names in METRICS.values()),
    "stream": 3,
    "status": 5,
    "reason": len(REASONS),
    "alert": 9,
    "severity": 1,  # one per alert name
    "detector": 6,
    "result": 4,
    "kind": len(KAFKA_ERROR_KINDS),
    "label": 3,
    "profile_id": 1,  # one reference per model
    "topic": 5,  # topic and partition: the five partitions consumed
    "partition": 1,
    "le": max(len(BATCH_DURATION_BUCKETS), len(LABEL_DELAY_BUCKETS)) + 1,
}


def series_bound(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> int:
    """The most series the families present may have: per sample name and label set,
    the product of the labels' caps."""
    shapes = {(name, frozenset(k for k, _ in labels)) for name, labels in samples}
    unknown = {k for _, keys in shapes for k in keys} - set(LABEL_CAPS)
    assert not unknown, f"labels without a cap: {unknown}"
    return sum(math.prod(LABEL_CAPS[k] for k in keys) for _, keys in shapes)


def test_100000_hostile_records_are_dead_lettered_and_metrics_stay_bounded(
    kafka_bootstrap: str, daemons: list[Daemon], tmp_path: Path
) -> None:
    started = time.monotonic()
    topics = TopicSet()
    create(kafka_bootstrap, topics)
    records, gen = hostile_records(topics)
    assert len(records) == TOTAL
    generated_s = time.monotonic() - started
    where = produce_all(kafka_bootstrap, records)
    produced_s = time.monotonic() - started - generated_s
    invalid = {w: r for w, r in zip(where, records, strict=True) if r.reason is not None}
    kinds = Counter(r.kind for r in records)

    config = tmp_path / "driftline.yaml"
    config.write_text(CONFIG)
    daemon = Daemon(kafka_bootstrap, topics, tmp_path, args=["--config", str(config)]).start()
    daemons.append(daemon)
    consume_started = time.monotonic()

    def all_counted() -> bool:
        assert daemon.process is not None and daemon.process.poll() is None, (
            f"the daemon exited:\n{daemon.log()[-3000:]}"
        )
        return daemon.events() >= TOTAL

    wait_for(all_counted, 600, f"{TOTAL} events counted", interval_s=0.5)
    consumed_s = time.monotonic() - consume_started

    letters = consume_all(kafka_bootstrap, topics.dead_letter, len(invalid), timeout_s=120)
    by_source: dict[tuple[str, int, int], Any] = {}
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        source = (
            headers["driftline.source_topic"],
            int(headers["driftline.source_partition"]),
            int(headers["driftline.source_offset"]),
        )
        assert source not in by_source, f"dead-lettered twice: {source}"
        by_source[source] = (headers, letter.value)
    assert len(letters) == len(invalid)
    assert set(by_source) == set(invalid)
    wrong: Counter[tuple[str, str | None, str]] = Counter()
    for source, record in invalid.items():
        headers, value = by_source[source]
        assert headers["driftline.reason"] in REASONS
        if headers["driftline.reason"] != record.reason:
            wrong[(record.kind, record.reason, headers["driftline.reason"])] += 1
        # An empty value may come back as null: both are "empty".
        assert (value or None) == (record.value or None), f"{record.kind} changed"
    assert not wrong, f"(kind, expected, got) reasons: {dict(wrong)}"

    got = daemon.samples()
    statuses: Counter[str] = Counter()
    for (name, labels), value in got.items():
        if name == "driftline_events_total":
            statuses[dict(labels)["status"]] += int(value)
    assert statuses == {"invalid": len(invalid), "ok": TOTAL - len(invalid)}, statuses
    models = {dict(labels)["model"] for (name, labels) in got if name == "driftline_events_total"}
    assert len(models) <= MAX_MODELS + 2 and {"__other__", "__unknown__", WIDE} <= models
    features = {dict(labels)["feature"] for (name, labels) in got if "feature" in dict(labels)}
    assert 0 < len(features) <= MAX_FEATURES, features

    status, body = daemon.get("/metrics")
    assert status == 200
    samples = parse_samples(body)
    bound = series_bound(samples)
    size = len(body.encode())
    assert len(samples) <= bound
    assert size <= 200 * bound  # about 100 bytes a series in practice
    assert daemon.process is not None and daemon.process.poll() is None
    print(
        f"\nhostile input: {TOTAL} records ({len(invalid)} invalid) by kind {dict(kinds)}; "
        f"{len(gen.models)} distinct model names, {len(gen.features)} distinct feature "
        f"names; generated in {generated_s:.1f} s, produced in {produced_s:.1f} s, "
        f"counted by the daemon in {consumed_s:.1f} s; {len(letters)} dead letters by "
        f"reason {dict(Counter(h['driftline.reason'] for h, _ in by_source.values()))}; "
        f"/metrics: {len(samples)} series (bound {bound}), {size} bytes"
    )
