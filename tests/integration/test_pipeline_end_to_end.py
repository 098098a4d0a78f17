"""The model pipeline on a real broker: drift, the outcome join, and replay's equivalence.

One daemon consumes the scenarios of :mod:`driftline_scenarios` in stages (each stage
is waited for, so the daemon sees the events in the order they were produced); every
figure is read back from its ``/metrics``. Finally ``driftline replay`` runs over the
same events, in the same order, and must end with the same metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from detectors import ProfileBuilder, WindowChecker
from driftline_scenarios import CATEGORICAL, NUMERIC, drift_scenario, join_scenario
from driftline_testing import (
    Daemon,
    TopicSet,
    consume_all,
    parse_samples,
    produce,
    sample,
    series,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)

CONFIG = """\
join:
  ttl_s: 86400
models:
  fraud:
    performance_window: 5000
"""

#: Families that describe the process or its Kafka consumer, not the events; and the
#: alerts, whose durations run on the wall clock in the daemon and on event time in a
#: replay (here the daemon sees minutes of event time pass in seconds).
NOT_COMPARED = (
    "driftline_batch_duration_seconds",
    "driftline_consumer_lag",
    "driftline_ready",
    "driftline_kafka_errors",
    "driftline_alert",
)


def topic_of(event: dict[str, Any], topics: TopicSet) -> str:
    if "signal" in event:
        return topics.signals
    return topics.outcomes if "label" in event else topics.predictions


def send(bootstrap: str, topics: TopicSet, events: Iterable[dict[str, Any]]) -> None:
    # Keyed by model, as DESIGN.md asks of producers: one model's events stay in order.
    produce(
        bootstrap,
        [(topic_of(e, topics), json.dumps(e).encode()) for e in events],
        key=lambda value: json.loads(value or b"{}")["model"].encode(),
    )


def test_drift_join_and_replay_on_a_real_broker(
    kafka_bootstrap: str, topics: TopicSet, daemons: list[Daemon], tmp_path: Path
) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text(CONFIG)
    daemon = Daemon(kafka_bootstrap, topics, tmp_path, args=["--config", str(config)]).start()
    daemons.append(daemon)
    drift = drift_scenario()
    join = join_scenario()
    produced: list[dict[str, Any]] = []

    def stage(events: list[dict[str, Any]], done: Any, what: str) -> None:
        send(kafka_bootstrap, topics, events)
        produced.extend(events)
        wait_for(done, 120, what)

    # 5,000 reference and 10,000 stationary predictions: ten windows, no decision.
    stage(
        drift.reference + drift.stationary,
        lambda: daemon.value("driftline_windows_total", model="churn") == 10,
        "ten closed windows",
    )
    got = daemon.samples()
    assert sample(got, "driftline_drifted_windows_total", model="churn") == 0
    decisions = series(got, "driftline_feature_drift", "feature", model="churn")
    assert set(decisions) == set(NUMERIC + CATEGORICAL) and sum(decisions.values()) == 0

    # 10,000 drifted ones: exactly the shifted feature and the one with a new category.
    stage(
        drift.drifted,
        lambda: daemon.value("driftline_windows_total", model="churn") == 20,
        "twenty closed windows",
    )
    got = daemon.samples()
    decisions = series(got, "driftline_feature_drift", "feature", model="churn")
    assert {f for f, v in decisions.items() if v == 1} == {"num_0", "cat_0"}
    labels = {"model": "churn", "alert": "FeatureDrift", "severity": "warning"}
    wait_for(lambda: daemon.value("driftline_alert_active", **labels) == 1, 30, "the alert")
    # The score depends on num_0: the predictions drift too.
    records = consume_all(kafka_bootstrap, topics.alerts, expected=3)
    alerts = [json.loads(r.value) for r in records]
    assert sorted((a["alert"], a["subject"], a["status"]) for a in alerts) == [
        ("FeatureDrift", "cat_0", "firing"),
        ("FeatureDrift", "num_0", "firing"),
        ("PredictionDrift", None, "firing"),
    ]
    assert b"churn/FeatureDrift/num_0" in {r.key for r in records}
    assert all(a["evidence"]["window"]["index"] >= 11 for a in alerts)
    assert sample(got, "driftline_drifted_windows_total", model="churn") == 10
    builder = ProfileBuilder()
    for event in drift.reference:
        builder.update(event["features"])
    window = drift.drifted[-1000:]
    columns: dict[str, Any] = {n: [e["features"][n] for e in window] for n in CATEGORICAL}
    for name in NUMERIC:
        columns[name] = [
            float("nan") if e["features"][name] is None else e["features"][name] for e in window
        ]
    for name, check in WindowChecker(builder.build()).check(columns).items():
        labels = {"model": "churn", "feature": name}
        assert sample(got, "driftline_feature_psi", **labels) == pytest.approx(check.psi, 1e-12)
        if name in NUMERIC:
            ks = sample(got, "driftline_feature_ks_statistic", **labels)
            assert ks == pytest.approx(check.statistic, rel=1e-12)

    # Predictions, then their outcomes shuffled, late, duplicated or never; then time
    # moves on past the TTL.
    stage(
        join.predictions,
        lambda: daemon.events(stream="predictions", model="fraud") == len(join.predictions),
        "the fraud predictions",
    )
    stage(
        join.outcomes,
        lambda: daemon.events(stream="outcomes", model="fraud") == len(join.outcomes),
        "the fraud outcomes",
    )
    stage(
        [join.clock],
        lambda: daemon.value("driftline_joins_total", model="fraud", result="expired") > 0,
        "predictions to expire",
    )
    got = daemon.samples()
    assert series(got, "driftline_joins_total", "result", model="fraud") == {
        "joined": join.joined,
        "expired": join.expired,
        "unmatched": join.unmatched,
        "unusable": 0,
    }
    assert series(got, "driftline_events_total", "status", stream="outcomes", model="fraud") == {
        "ok": join.joined + join.unmatched,
        "duplicate": join.duplicate_outcomes,
    }
    assert (
        sample(
            got, "driftline_events_total", stream="predictions", model="fraud", status="duplicate"
        )
        == join.duplicate_predictions
    )
    accuracy = sample(got, "driftline_performance", model="fraud", metric="accuracy")
    assert accuracy == pytest.approx(join.accuracy, abs=1e-12)

    # The same events through `driftline replay`: the same final metrics.
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in produced))
    metrics_file = tmp_path / "replay.prom"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "replay",
            str(events_file),
            "--config",
            str(config),
            "--metrics-out",
            str(metrics_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "model fraud:" in done.stdout and "drifted features: cat_0, num_0" in done.stdout
    replayed = parse_samples(metrics_file.read_text())
    daemon_final = daemon.samples()

    def comparable(samples: dict[Any, float]) -> dict[Any, float]:
        return {k: v for k, v in samples.items() if not k[0].startswith(NOT_COMPARED)}

    assert comparable(replayed) == comparable(daemon_final)
    assert len(comparable(replayed)) > 100  # the per-feature families are there
