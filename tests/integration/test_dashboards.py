"""Grafana dashboards: well formed, provisioned where compose mounts them, and every query answers.

The static tests read the dashboard JSON and the provisioning YAML. The live test runs
the daemon on a real broker with traffic that gives every panel something to show
(drift, outcomes, signals, segments, versions, invalid events, a Kafka error, a clamped
clock, a model over the cap), lets a real Prometheus scrape it every second, resolves
the template variables as Grafana would (each variable's query, then the selection)
and requires every panel query to return a finite value. Every metric a dashboard or
an alert rule names must be on the daemon's /metrics.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator, Mapping
from functools import cache
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline_scenarios import T0, drift_scenario
from driftline_testing import Daemon, PrometheusServer, TopicSet, produce, wait_for
from monitor.local_broker import free_port

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
PROVISIONING = DASHBOARDS / "provisioning"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "driftline.rules.yml"
COMPOSE = ROOT / "compose.yaml"

# Where compose.yaml mounts the directories in the Grafana container.
GRAFANA_DASHBOARDS = "/var/lib/grafana/dashboards"
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Grafana's built-in interval variables, about as they resolve for the default 6 h range.
BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\s*\)$")
METRIC = re.compile(r"\bdriftline_[a-z0-9_]+\b")

REFERENCE, WINDOW = 300, 100  # predictions


# --- reading the dashboards -----------------------------------------------------------


@cache
def dashboard(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DASHBOARDS / name).read_text())
    return loaded


def dashboard_names() -> list[str]:
    return sorted(p.name for p in DASHBOARDS.glob("*.json"))


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def exprs(board: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(panel title, expr)`` of every query of every panel."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def variables(board: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


def variable_query(variable: Mapping[str, Any]) -> str:
    query = variable["query"]
    return str(query["query"] if isinstance(query, dict) else query)


def provisioned(kind: str) -> dict[str, Any]:
    (path,) = (PROVISIONING / kind).glob("*.yaml")
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def substitute(expr: str, values: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"{expr!r} uses ${name}, which the dashboard does not define"
        return values[name]

    return VARIABLE.sub(value, expr)


# --- static checks ----------------------------------------------------------------------


def test_there_are_the_three_dashboards_with_distinct_uids() -> None:
    names = dashboard_names()
    assert names == ["driftline-model.json", "driftline-operations.json", "driftline-overview.json"]
    uids = [dashboard(n)["uid"] for n in names]
    assert len(set(uids)) == len(uids) and all(uids)


@pytest.mark.parametrize("name", dashboard_names())
def test_a_dashboard_is_well_formed_and_uses_the_provisioned_data_source(name: str) -> None:
    board = dashboard(name)
    assert board["schemaVersion"] >= 36 and board["title"].startswith("driftline")
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    taken: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"{name}: {panel['title']}"
        for cell in product(
            range(pos["x"], pos["x"] + pos["w"]), range(pos["y"], pos["y"] + pos["h"])
        ):
            assert cell not in taken, f"{name}: {panel['title']} overlaps {taken[cell]}"
            taken[cell] = panel["title"]
    datasource = variables(board)["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    (source,) = provisioned("datasources")["datasources"]
    assert datasource["current"]["value"] == source["uid"]
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        title = panel["title"]
        assert panel["description"].strip(), f"{name}: {title} has no description"
        assert panel["datasource"] == DATASOURCE, f"{name}: {title}"
        assert panel["targets"], f"{name}: {title} has no query"
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, f"{name}: {title}"
            assert METRIC.search(target["expr"]), f"{name}: {title} queries no driftline metric"
    for variable in variables(board).values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE
            assert LABEL_VALUES.match(variable_query(variable)), variable["name"]


@pytest.mark.parametrize("name", ["driftline-overview.json", "driftline-model.json"])
def test_the_model_dashboards_have_model_and_feature_variables(name: str) -> None:
    found = variables(dashboard(name))
    assert variable_query(found["model"]) == "label_values(driftline_alert_active, model)"
    assert (
        variable_query(found["feature"])
        == 'label_values(driftline_feature_psi{model=~"$model"}, feature)'
    )
    # The drill-down shows one model; the overview any number.
    assert found["model"]["multi"] is (name == "driftline-overview.json")
    assert found["feature"]["multi"] and found["feature"]["includeAll"]


def test_provisioning_points_where_compose_mounts_the_files() -> None:
    (source,) = provisioned("datasources")["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy"
    assert source["url"] == "http://prometheus:9090" and source["isDefault"] is True
    (provider,) = provisioned("dashboards")["providers"]
    assert provider["type"] == "file" and provider["folder"] == "driftline"
    assert provider["options"]["path"] == GRAFANA_DASHBOARDS
    if not COMPOSE.exists():
        return
    grafana = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]
    mounts = {}
    for volume in grafana["volumes"]:
        host, container, *_ = volume.split(":")
        mounts[container] = host
    assert mounts[GRAFANA_DASHBOARDS] == "./dashboards"
    assert mounts[GRAFANA_PROVISIONING] == "./dashboards/provisioning"


# --- the live run -----------------------------------------------------------------------


class LateBroker:
    """A port that refuses connections until :meth:`open`, then forwards them to the
    broker: the daemon starts while "the broker" is down (a real connect error) and
    connects once it is up. Clients only bootstrap through it (the broker advertises
    its own address)."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def open(self) -> None:
        target = self.target

        class Forward(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(target, timeout=10) as upstream:
                    back = threading.Thread(target=_pump, args=(upstream, self.request))
                    back.start()
                    _pump(self.request, upstream)
                    back.join()

        self._server = _Server(("127.0.0.1", self.port), Forward)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def stages() -> list[list[tuple[str, bytes]]]:
    """``(stream, record)`` in stages of one drift window each.

    churn: 300 reference predictions, 300 stationary, 400 drifted (num_0 and cat_0), in
    two regions and two versions; outcomes for 70% of them (right 90% of the time,
    60% once drifted); a conversion signal for 20%. fraud: 500 stationary predictions
    of version f1 with outcomes. Records that are not events: some before any model is
    known (counted under __unknown__), some of churn's later.
    """
    rng = random.Random(3)
    churn = drift_scenario(
        "churn", seed=0, n_reference=REFERENCE, n_stationary=300, n_drifted=400
    ).predictions
    fraud = drift_scenario(
        "fraud", seed=5, n_reference=REFERENCE, n_stationary=200, n_drifted=0
    ).predictions
    drift_starts = 600
    for i, event in enumerate(churn):
        event["timestamp"] = T0 + i
        event["segment"] = {"region": "eu" if i % 5 < 3 else "us"}
        event["model_version"] = "v1" if i < 500 else "v2"
    for i, event in enumerate(fraud):
        event["timestamp"] = T0 + 2 * i
        event["model_version"] = "f1"

    def outcome(event: dict[str, Any], right: float) -> dict[str, Any]:
        label = int(event["prediction"] >= 0.5)
        return {
            "id": event["id"],
            "model": event["model"],
            "timestamp": event["timestamp"] + rng.uniform(30.0, 600.0),
            "label": label if rng.random() < right else 1 - label,
        }

    result: list[list[tuple[str, dict[str, Any]]]] = []
    for k in range(len(churn) // WINDOW):
        stage: list[tuple[str, dict[str, Any]]] = []
        for i in range(k * WINDOW, (k + 1) * WINDOW):
            event = churn[i]
            stage.append(("predictions", event))
            if rng.random() < 0.7:
                stage.append(("outcomes", outcome(event, 0.9 if i < drift_starts else 0.6)))
            if rng.random() < 0.2:
                signal = {
                    "id": event["id"],
                    "model": "churn",
                    "signal": "conversion",
                    "timestamp": event["timestamp"] + 5.0,
                }
                stage.append(("signals", signal))
        for event in fraud[k * WINDOW // 2 : (k + 1) * WINDOW // 2]:
            stage.append(("predictions", event))
            if rng.random() < 0.7:
                stage.append(("outcomes", outcome(event, 0.85)))
        result.append(stage)
    # A model over limits.max_models, and a prediction from a clock two days fast: its
    # record time replaces it, which moves event time to now and expires every
    # prediction still waiting for its outcome.
    last = [
        ("predictions", {"id": f"legacy-{i}", "model": "legacy", "prediction": 0.5})
        for i in range(5)
    ]
    last.append(
        (
            "predictions",
            {**churn[-1], "id": "churn-fast-clock", "timestamp": time.time() + 2 * 86_400.0},
        )
    )
    result.append(last)
    records = [[(stream, json.dumps(event).encode()) for stream, event in s] for s in result]
    records[0][:0] = [("predictions", b"{broken"), ("outcomes", b"[1, 2")]
    no_id = json.dumps({"model": "churn", "prediction": 0.5}).encode()
    records[3] += [("predictions", no_id)] * 3
    return records


def send(bootstrap: str, topics: TopicSet, records: list[tuple[str, bytes]]) -> None:
    topic = {
        "predictions": topics.predictions,
        "outcomes": topics.outcomes,
        "signals": topics.signals,
    }
    produce(
        bootstrap,
        [(topic[stream], value) for stream, value in records],
        key=lambda value: _model_of(value).encode(),
    )


def _model_of(value: bytes | None) -> str:
    # Keyed by model, as producers should: one model's events stay in order.
    try:
        return str(json.loads(value or b"")["model"])
    except (ValueError, KeyError, TypeError):
        return "?"


def resolve_variables(
    board: Mapping[str, Any], prom: PrometheusServer
) -> tuple[dict[str, str], list[str]]:
    """The variables' values as Grafana selects them by default (all values of a multi
    variable, else the first), and the variables whose query returned nothing."""
    values = dict(BUILTINS)
    empty = []
    for name, variable in variables(board).items():
        if variable["type"] == "datasource":
            values[name] = variable["current"]["value"]
            continue
        match = LABEL_VALUES.match(substitute(variable_query(variable), values))
        assert match is not None
        label = match["label"]
        # label_values(selector, label) as a query: the label's values among the series.
        result = prom.query(f"count by ({label}) ({match['selector']})")
        found = sorted({r["metric"][label] for r in result if label in r["metric"]})
        if not found:
            empty.append(name)
            found = ["no-value"]
        values[name] = "|".join(found) if variable.get("multi") else found[0]
    return values, empty


def unanswered(prom: PrometheusServer) -> list[str]:
    """Every variable and panel query that returns no finite value yet."""
    missing = []
    for name in dashboard_names():
        board = dashboard(name)
        values, empty = resolve_variables(board, prom)
        missing += [f"{name}: variable ${v}" for v in empty]
        for title, expr in exprs(board):
            query = substitute(expr, values)
            # A default of 0 must not hide a query that finds nothing.
            for q in dict.fromkeys([query, query.replace(" or vector(0)", "")]):
                if not any(math.isfinite(float(r["value"][1])) for r in prom.query(q)):
                    missing.append(f"{name}: {title}: {q}")
    return missing


def used_metrics() -> dict[str, str]:
    """Every driftline metric a dashboard or alert rule queries, and where."""
    used = {}
    for name in dashboard_names():
        for title, expr in exprs(dashboard(name)):
            used.update(dict.fromkeys(METRIC.findall(expr), f"{name}: {title}"))
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for rule in (r for group in groups for r in group["rules"]):
        used.update(dict.fromkeys(METRIC.findall(rule["expr"]), f"rule {rule['alert']}"))
    return used


def test_every_dashboard_query_answers_from_the_prometheus_of_a_real_run(
    kafka_bootstrap: str,
    topics: TopicSet,
    daemons: list[Daemon],
    prometheus_binary: str,
    tmp_path: Path,
) -> None:
    broker = LateBroker(kafka_bootstrap)
    env = {
        "DRIFTLINE_DEFAULTS__REFERENCE_SIZE": str(REFERENCE),
        "DRIFTLINE_DEFAULTS__WINDOW_SIZE": str(WINDOW),
        "DRIFTLINE_DEFAULTS__PERFORMANCE_WINDOW": str(WINDOW),
        "DRIFTLINE_DEFAULTS__SEGMENTS": "[region]",
        "DRIFTLINE_JOIN__TTL_S": "900",
        "DRIFTLINE_LIMITS__MAX_MODELS": "2",
        "DRIFTLINE_KAFKA__CONNECT_BACKOFF_INITIAL_S": "0.2",
        "DRIFTLINE_KAFKA__CONNECT_BACKOFF_MAX_S": "0.5",
    }
    daemon = Daemon(broker.address, topics, tmp_path, env=env).start()
    daemons.append(daemon)
    try:
        with PrometheusServer(prometheus_binary, [f"127.0.0.1:{daemon.port}"], tmp_path) as prom:
            wait_for(
                lambda: daemon.value("driftline_kafka_errors_total", kind="connect") >= 1,
                30,
                "a failed connection attempt",
            )
            broker.open()
            wait_for(lambda: daemon.get("/readyz")[0] == 200, 60, "the daemon to be ready")
            sent = 0
            # One drift window per stage, each consumed before the next is sent, so that
            # the windows (and the signals' rate per window) see the events in order.
            for events in stages():
                send(kafka_bootstrap, topics, events)
                sent += len(events)
                wait_for(lambda n=sent: daemon.events() >= n, 60, f"{sent} events consumed")
            assert daemon.events() == sent
            wait_for(
                lambda: (
                    prom.scalar('driftline_alert_active{model="churn",alert="FeatureDrift"}') == 1
                ),
                30,
                "FeatureDrift to fire for churn",
            )
            missing: list[str] = []

            def answered() -> bool:
                missing[:] = unanswered(prom)
                return not missing

            try:
                wait_for(answered, 60, "every dashboard query to answer")
            except AssertionError:
                raise AssertionError("no data for:\n" + "\n".join(missing)) from None
    finally:
        broker.close()

    exposed = {name for name, _ in daemon.samples()}
    absent = {m: where for m, where in used_metrics().items() if m not in exposed}
    assert not absent, f"not on driftline's /metrics: {absent}"
