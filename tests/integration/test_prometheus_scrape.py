"""A real Prometheus scrapes the daemon and sees the contract metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftline_testing import Daemon, PrometheusServer, TopicSet, produce, wait_for

pytestmark = pytest.mark.integration


def test_prometheus_scrapes_the_daemon_and_sees_every_event(
    kafka_bootstrap: str,
    topics: TopicSet,
    daemons: list[Daemon],
    prometheus_binary: str,
    tmp_path: Path,
) -> None:
    produce(
        kafka_bootstrap,
        [
            (
                topics.predictions,
                json.dumps({"id": f"p-{i}", "model": "churn", "prediction": 0.1}).encode(),
            )
            for i in range(120)
        ]
        + [(topics.signals, b"{broken")] * 3,
    )
    daemon = Daemon(kafka_bootstrap, topics, tmp_path).start()
    daemons.append(daemon)
    with PrometheusServer(prometheus_binary, [f"127.0.0.1:{daemon.port}"], tmp_path) as prom:
        wait_for(lambda: prom.scalar('up{job="driftline"}') == 1, 60, "the scrape to succeed")
        wait_for(
            lambda: prom.scalar('sum(driftline_events_total{status="ok"})') == 120,
            60,
            "Prometheus to see 120 ok events",
        )
        assert (
            prom.scalar(
                'driftline_events_total{stream="signals",model="__unknown__",status="invalid"}'
            )
            == 3
        )
        assert prom.scalar('driftline_dead_letters_total{reason="invalid_json"}') == 3
        assert prom.scalar("driftline_build_info") == 1
        assert (prom.scalar("sum(driftline_batch_duration_seconds_count)") or 0) >= 1
        assert prom.scalar("driftline_ready") == 1
        lag = prom.query(f'driftline_consumer_lag{{topic="{topics.predictions}"}}')
        assert {series["metric"]["partition"] for series in lag} == {"0", "1"}
