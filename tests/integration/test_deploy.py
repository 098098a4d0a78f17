"""deploy/: Prometheus config and rules, their unit tests, Alertmanager routing and inhibition."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from driftline_scenarios import drift_scenario, join_scenario
from driftline_testing import AlertmanagerServer, WebhookReceiver, parse_samples, wait_for
from monitor.alerts import ALERTS
from monitor.config import Settings
from monitor.replay import replay

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "driftline.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "driftline.rules.test.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_config_and_the_rules(promtool_binary: str) -> None:
    done = run(promtool_binary, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    done = run(promtool_binary, "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_passes_its_unit_tests(promtool_binary: str) -> None:
    done = run(promtool_binary, "test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_rule_is_unit_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names = {rule["alert"] for rule in rules()}
    assert names == firing
    # Near misses that must not fire are tested within the firing cases (other models,
    # features or signals in the same input) or as explicit empty cases.
    assert quiet >= {"FeatureDrift", "InvalidEvents", "ConsumerLag", "DriftlineDown"}


def test_every_alert_name_has_a_rule_severity_summary_and_runbook_section() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert set(ALERTS) <= set(by_name)
    runbook = RUNBOOK.read_text()
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", runbook, re.MULTILINE)}
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        url = annotations["runbook_url"]
        assert url.startswith("docs/runbook.md#") and url.split("#")[1] in anchors, name


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")


def test_every_metric_a_rule_uses_is_exported_by_driftline() -> None:
    # A replay with every kind of traffic exposes every family the daemon has (plus the
    # Kafka-only ones the telemetry collector always exposes).
    s = join_scenario()
    events: list[dict[str, Any]] = []
    for i, e in enumerate(drift_scenario(n_stationary=1000, n_drifted=1000).predictions):
        events.append(e)
        if i % 10 == 0:
            events.append({"id": e["id"], "model": "churn", "signal": "conversion"})
    events += s.predictions + s.outcomes + [s.clock]
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    exposed = {
        name for name, _ in parse_samples(replay(io.BytesIO(data), Settings()).metrics.decode())
    }
    exposed |= {"up", "driftline_consumer_lag", "driftline_ready"}
    for rule in rules():
        for name in re.findall(r"\b(driftline_[a-z_]+|up)\b", rule["expr"]):
            assert name in exposed, f"{rule['alert']} uses {name}, which driftline does not export"


def test_amtool_accepts_the_alertmanager_config(amtool_binary: str) -> None:
    done = run(amtool_binary, "check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr


def alert(name: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": name}}


def test_alertmanager_groups_by_model_and_inhibits_consequences(
    alertmanager_binary: str, tmp_path: Path
) -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    with WebhookReceiver() as receiver:
        for r in config["receivers"]:
            r["webhook_configs"] = [{"url": receiver.url, "send_resolved": True}]
        config["route"].update(group_wait="1s", group_interval="1s")
        with AlertmanagerServer(alertmanager_binary, config, tmp_path) as am:
            am.post_alerts(
                [
                    alert("NoTraffic", model="quiet", severity="critical"),
                    alert("FeatureDrift", model="quiet", feature="x", severity="warning"),
                    alert("FeatureDrift", model="busy", feature="x", severity="warning"),
                    alert("PredictionDrift", model="busy", severity="warning"),
                    alert("ConceptDrift", model="busy", severity="warning"),
                ]
            )

            def delivered() -> set[tuple[str, str]]:
                return {(a["labels"]["alertname"], a["labels"]["model"]) for a in receiver.alerts()}

            wait_for(lambda: len(delivered()) >= 3, 30, "three notifications")
            # Let a second round of group_interval pass: nothing else may arrive.
            count = len(receiver.notifications)
            wait_for(lambda: _am_groups(am) >= 2, 30, "both groups")
            assert delivered() == {
                ("NoTraffic", "quiet"),
                ("FeatureDrift", "busy"),
                ("ConceptDrift", "busy"),
            }
            groups = [
                {a["labels"]["model"] for a in n["alerts"]} for n in receiver.notifications[:count]
            ]
            assert all(len(g) == 1 for g in groups)  # one model per notification
            receivers = {n["receiver"] for n in receiver.notifications}
            assert receivers == {"driftline", "driftline-critical"}


def _am_groups(am: AlertmanagerServer) -> int:
    import urllib.request

    with urllib.request.urlopen(f"http://{am.address}/api/v2/alerts/groups", timeout=5) as r:
        return len(json.loads(r.read()))
