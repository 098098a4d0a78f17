"""Real processes on loopback: broker → driftline → Prometheus (rules) → Alertmanager → webhook.

A feature drifts: the webhook receives FeatureDrift for that model and feature. The
drift stops: it receives the resolution. The alerts topic holds both transitions.
Only the shipped files' timings are shortened (keep_firing_for, group_wait): the
expressions, labels, routes and inhibitions are those of deploy/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline_scenarios import drift_scenario
from driftline_testing import (
    AlertmanagerServer,
    Daemon,
    PrometheusServer,
    TopicSet,
    WebhookReceiver,
    consume_all,
    produce,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]


def send(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    produce(bootstrap, [(topic, json.dumps(e).encode()) for e in events], key=lambda v: b"churn")


def test_feature_drift_reaches_the_webhook_and_resolves(
    kafka_bootstrap: str,
    topics: TopicSet,
    daemons: list[Daemon],
    prometheus_binary: str,
    alertmanager_binary: str,
    tmp_path: Path,
) -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/driftline.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "keep_firing_for" in rule:
                rule["keep_firing_for"] = "1s"
    rules_file = tmp_path / "driftline.rules.yml"
    rules_file.write_text(yaml.safe_dump(rules))
    am_config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    am_config["route"].update(group_wait="1s", group_interval="1s")

    env = {
        "DRIFTLINE_DEFAULTS__REFERENCE_SIZE": "1000",
        "DRIFTLINE_DEFAULTS__WINDOW_SIZE": "500",
        "DRIFTLINE_DEFAULTS__POLICY__CLEAR_AFTER": "2",
        "DRIFTLINE_ALERTS__RESOLVE_AFTER_S": "2",
    }
    daemon = Daemon(kafka_bootstrap, topics, tmp_path, env=env).start()
    daemons.append(daemon)
    drift = drift_scenario(n_reference=1000, n_stationary=1000, n_drifted=1500)
    calm = drift_scenario(seed=7, n_reference=0, n_stationary=2000, n_drifted=0,
                          t0=drift.drifted[-1]["timestamp"] + 0.1).stationary  # fmt: skip
    for i, event in enumerate(calm):
        event["id"] = f"calm-{i}"

    with WebhookReceiver() as receiver:
        for r in am_config["receivers"]:
            r["webhook_configs"] = [{"url": receiver.url, "send_resolved": True}]
        with (
            AlertmanagerServer(alertmanager_binary, am_config, tmp_path) as am,
            PrometheusServer(
                prometheus_binary,
                [f"127.0.0.1:{daemon.port}"],
                tmp_path,
                rule_files=[rules_file],
                alertmanager=am.address,
            ) as prom,
        ):
            wait_for(lambda: prom.scalar('up{job="driftline"}') == 1, 60, "the first scrape")
            send(kafka_bootstrap, topics.predictions, drift.predictions)

            def notified(status: str) -> list[dict[str, Any]]:
                return [
                    a
                    for a in receiver.alerts()
                    if a["status"] == status
                    and a["labels"].get("alertname") == "FeatureDrift"
                    and a["labels"].get("model") == "churn"
                    and a["labels"].get("feature") == "num_0"
                ]

            wait_for(lambda: notified("firing"), 120, "FeatureDrift at the webhook")
            firing = notified("firing")[0]
            assert firing["labels"]["severity"] == "warning"
            assert "PSI" in firing["annotations"]["description"]
            assert firing["annotations"]["runbook_url"] == "docs/runbook.md#featuredrift"
            assert not notified("resolved")

            send(kafka_bootstrap, topics.predictions, calm)
            wait_for(lambda: notified("resolved"), 120, "the resolution at the webhook")
            # Nothing fired for the features that did not drift.
            features = {
                a["labels"].get("feature")
                for a in receiver.alerts()
                if a["labels"].get("alertname") == "FeatureDrift"
            }
            assert features <= {"num_0", "cat_0"}

    transitions = [
        json.loads(r.value)
        for r in consume_all(kafka_bootstrap, topics.alerts, expected=4)
        if r.key == b"churn/FeatureDrift/num_0"
    ]
    assert [t["status"] for t in transitions] == ["firing", "resolved"]
    assert transitions[0]["evidence"]["psi"] > transitions[0]["evidence"]["min_effect"]
    assert transitions[0]["profile_id"] and transitions[1]["at"] > transitions[0]["at"]
