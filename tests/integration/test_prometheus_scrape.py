"""A real Prometheus scrapes the daemon and sees the contract metrics."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from driftline_scenarios import drift_scenario, join_scenario
from driftline_testing import Daemon, PrometheusServer, TopicSet, produce, wait_for
from monitor.config import Settings
from monitor.replay import replay

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
                json.dumps(
                    {
                        "id": f"p-{i}",
                        "model": "churn",
                        "prediction": 0.1 * (i % 10),
                        "features": {"x": i % 7, "plan": "abc"[i % 3]},
                    }
                ).encode(),
            )
            for i in range(120)
        ]
        + [(topics.signals, b"{broken")] * 3,
    )
    # Small windows, so that the per-model families are there too: 60 reference rows,
    # then three windows of 20.
    env = {"DRIFTLINE_DEFAULTS__REFERENCE_SIZE": "60", "DRIFTLINE_DEFAULTS__WINDOW_SIZE": "20"}
    daemon = Daemon(kafka_bootstrap, topics, tmp_path, env=env).start()
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
        # Prometheus ingested the per-model families (a malformed exposition fails the
        # whole scrape).
        wait_for(
            lambda: prom.scalar('driftline_windows_total{model="churn"}') == 3,
            60,
            "Prometheus to see three drift windows",
        )
        assert prom.scalar('count(driftline_feature_psi{model="churn"})') == 2


def test_promtool_finds_nothing_to_lint_in_the_full_exposition(
    tmp_path: Path, promtool_binary: str
) -> None:
    promtool = promtool_binary
    scenario = join_scenario()
    events = drift_scenario(n_stationary=1000, n_drifted=1000).predictions
    events += scenario.predictions + scenario.outcomes + [scenario.clock]
    settings = Settings.model_validate({"defaults": {"segments": ["region"]}})
    for i, event in enumerate(events):
        event.setdefault("segment", {"region": ["eu", "us", 'odd "one"'][i % 3]})
    exposition = tmp_path / "metrics.prom"
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    exposition.write_bytes(replay(io.BytesIO(data), settings).metrics)
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    families = {
        line.split()[2] for line in exposition.read_text().splitlines() if line.startswith("# TYPE")
    }
    assert {
        "driftline_feature_psi",
        "driftline_performance",
        "driftline_joins_total",
        "driftline_segment_performance",
        "driftline_label_delay_seconds",
    } <= families
