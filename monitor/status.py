"""What a person looks at: the live state per model, as an HTML page, JSON, or terminal text.

:class:`StatusBoard` samples the model snapshots, the alert view and the telemetry
once a second (called by the service loop) and keeps a short history for the plots.
Everything it shows comes from bounded state: capped models and features, the last
:data:`HISTORY` samples, the last :data:`RECENT_ALERTS` transitions.
"""

from __future__ import annotations

import html
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from monitor.alerts import Transition, summary
from monitor.model import ModelSnapshot
from monitor.service import AlertView
from monitor.telemetry import Snapshot as TelemetrySnapshot

__all__ = ["StatusBoard"]

HISTORY: Final = 300  # samples kept per series (about five minutes)
RECENT_ALERTS: Final = 50
PLOTTED_FEATURES: Final = 8
#: PSI plots share at least this scale, so noise in a quiet feature stays flat.
PSI_SCALE: Final = 0.25


@dataclass
class _ModelHistory:
    times: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    rate: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    psi: dict[str, deque[float]] = field(default_factory=dict)
    predictions: int = 0


class StatusBoard:
    """Samples the daemon's state for the status page and the demo's terminal view."""

    def __init__(
        self,
        snapshots: Callable[[], tuple[ModelSnapshot, ...]],
        alerts: Callable[[], AlertView],
        telemetry: Callable[[], TelemetrySnapshot],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._snapshots = snapshots
        self._alerts = alerts
        self._telemetry = telemetry
        self._clock = clock
        self._lock = threading.Lock()
        self._history: dict[str, _ModelHistory] = {}
        self._recent: deque[Transition] = deque(maxlen=RECENT_ALERTS)
        self._state: dict[str, Any] = {"models": [], "alerts": [], "updated": None}

    def __call__(self, transitions: Iterable[Transition]) -> None:
        """Observe one alert evaluation: keep its transitions, take a sample."""
        with self._lock:
            self._recent.extend(transitions)
        self.record()

    def record(self) -> None:
        """Take one sample (the service calls this about once a second)."""
        now = self._clock()
        snapshots = self._snapshots()
        view = self._alerts()
        telemetry = self._telemetry()
        predictions: dict[str, int] = {}
        invalid: dict[str, int] = {}
        for (stream, model, status), n in telemetry.events.items():
            if stream == "predictions" and status != "invalid":
                predictions[model] = predictions.get(model, 0) + n
            if status == "invalid":
                invalid[model] = invalid.get(model, 0) + n
        models = []
        with self._lock:
            for m in snapshots:
                h = self._history.setdefault(m.name, _ModelHistory())
                total = predictions.get(m.name, 0)
                if h.times:
                    elapsed = max(now - h.times[-1], 1e-9)
                    h.rate.append(max(0.0, (total - h.predictions) / elapsed))
                else:
                    h.rate.append(0.0)
                h.times.append(now)
                h.predictions = total
                report = m.report
                checks = report.checks if report is not None else {}
                for name, check in list(checks.items())[:PLOTTED_FEATURES]:
                    series = h.psi.setdefault(name, deque(maxlen=HISTORY))
                    series.append(check.psi if math.isfinite(check.psi) else 0.0)
                models.append(_model_state(m, total, invalid.get(m.name, 0), h, view))
            recent = [_transition_state(t) for t in reversed(self._recent)]
            self._state = {
                "updated": now,
                "ready": telemetry.ready,
                "models": models,
                "alerts": recent,
                "firing": sum(view.active.values()),
            }

    def state(self) -> dict[str, Any]:
        """The latest sample, JSON-ready."""
        with self._lock:
            return self._state

    def json(self) -> bytes:
        return json.dumps(self.state(), allow_nan=False, default=_none).encode()

    def html(self) -> bytes:
        return _page(self.state()).encode()

    def text(self) -> str:
        """A few plain lines per model, for logs and non-interactive terminals."""
        lines = []
        for m in self.state()["models"]:
            drifted = ", ".join(m["drifted_features"]) or "none"
            firing = ", ".join(m["firing"]) or "none"
            lines.append(
                f"{m['name']}: {m['predictions']:,} predictions ({m['rate']:.0f}/s), "
                f"{m['reference']}; drifted: {drifted}; alerts: {firing}"
            )
        return "\n".join(lines)


def _none(value: Any) -> Any:
    return None


def _model_state(
    m: ModelSnapshot, predictions: int, invalid: int, h: _ModelHistory, view: AlertView
) -> dict[str, Any]:
    report = m.report
    reference = (
        f"learning reference ({m.reference_rows:,} of its rows so far)"
        if m.learning
        else f"reference {m.profile_id} ({m.reference_rows:,} rows)"
    )
    features: list[dict[str, Any]] = []
    if report is not None:
        for name, check in report.checks.items():
            features.append(
                {
                    "name": name,
                    "psi": _finite(check.psi),
                    "pvalue": _finite(check.pvalue),
                    "missing": _finite(check.missing_ratio),
                    "outside": _finite(check.outside_ratio),
                    "drifted": name in report.drifted_features,
                    "history": list(h.psi.get(name, ())),
                }
            )
    features.sort(key=lambda f: -(f["psi"] or 0.0))
    return {
        "name": m.name,
        "version": m.version,
        "predictions": predictions,
        "invalid": invalid,
        "rate": h.rate[-1] if h.rate else 0.0,
        "rate_history": list(h.rate),
        "reference": reference,
        "windows": report.index if report is not None else 0,
        "drifted_features": sorted(report.drifted_features) if report is not None else [],
        "prediction_drifted": m.prediction_drifted,
        "features": features,
        "task": m.task,
        "performance": {k: _finite(v) for k, v in sorted(m.performance.items())},
        "performance_dropped": m.performance_dropped,
        "label_coverage": m.label_coverage,
        "signals": {
            name: {"rate": s.rate, "baseline": s.baseline, "dropped": s.dropped}
            for name, s in sorted(m.signals.items())
        },
        "firing": sorted(
            alert for (model, alert, _), v in view.active.items() if model == m.name and v
        ),
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _transition_state(t: Transition) -> dict[str, Any]:
    c = t.alert.condition
    return {
        "at": t.at,
        "status": t.status,
        "alert": c.alert,
        "severity": t.alert.severity,
        "model": c.model,
        "subject": c.subject,
        "summary": summary(c),
    }


# -- the page -------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.15em;margin:0 0 .4em}
.model{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}
table{border-collapse:collapse} td,th{padding:.15em .7em;text-align:left}
th{font-weight:600;color:#555} .drift{color:#b00020;font-weight:600}
.firing{background:#b00020;color:#fff;border-radius:3px;padding:0 .4em;margin-right:.3em}
.resolved{color:#2e7d32} .muted{color:#777} svg{vertical-align:middle}
"""


def _spark(
    values: list[float],
    width: int = 160,
    height: int = 28,
    colour: str = "#1565c0",
    floor: float = 1e-9,
) -> str:
    """An inline SVG line of ``values``, scaled to their maximum (at least ``floor``)."""
    if len(values) < 2:
        return f'<svg width="{width}" height="{height}"></svg>'
    top = max(max(values), floor)
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg width="{width}" height="{height}" role="img"><polyline fill="none" '
        f'stroke="{colour}" stroke-width="1.5" points="{points}"/></svg>'
    )


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def _page(state: Mapping[str, Any]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='2'><title>driftline</title>"
        f"<style>{_STYLE}</style></head><body>",
        "<h1>driftline</h1>",
        "<p class='muted'>"
        + ("consuming" if state.get("ready") else "not connected")
        + f" · {state.get('firing', 0)} alert(s) firing · "
        "<a href='/metrics'>/metrics</a> · <a href='/status.json'>/status.json</a> · "
        "<a href='/healthz'>/healthz</a> · <a href='/readyz'>/readyz</a></p>",
    ]
    if not state.get("models"):
        parts.append("<p>No model seen yet.</p>")
    for m in state.get("models", []):
        firing = "".join(f"<span class='firing'>{e(a)}</span>" for a in m["firing"])
        parts.append(f"<div class='model'><h2>{e(m['name'])} {firing}</h2>")
        parts.append(
            f"<p>{m['predictions']:,} predictions · {m['rate']:.0f}/s "
            f"{_spark(m['rate_history'], colour='#555')} · {e(m['reference'])}"
            + (f" · version {e(m['version'])}" if m["version"] else "")
            + f" · {m['windows']} windows</p>"
        )
        if m["features"]:
            parts.append(
                "<table><tr><th>feature</th><th>PSI</th><th>PSI, last samples</th>"
                "<th>p-value</th><th>missing</th><th>outside reference</th><th></th></tr>"
            )
            for f in m["features"]:
                cls = " class='drift'" if f["drifted"] else ""
                colour = "#b00020" if f["drifted"] else "#1565c0"
                parts.append(
                    f"<tr{cls}><td>{e(f['name'])}</td><td>{_fmt(f['psi'])}</td>"
                    f"<td>{_spark(f['history'], colour=colour, floor=PSI_SCALE)}</td>"
                    f"<td>{_fmt(f['pvalue'], '.2g')}</td><td>{_fmt(f['missing'], '.1%')}</td>"
                    f"<td>{_fmt(f['outside'], '.1%')}</td>"
                    f"<td>{'drifted' if f['drifted'] else ''}</td></tr>"
                )
            parts.append("</table>")
        if m["performance"]:
            shown = " · ".join(f"{e(k)} {_fmt(v)}" for k, v in m["performance"].items())
            drop = " <span class='drift'>dropped</span>" if m["performance_dropped"] else ""
            coverage = m["label_coverage"]
            parts.append(
                f"<p>performance ({e(str(m['task']))}): {shown}{drop}"
                + ("" if coverage is None else f" · label coverage {coverage:.0%}")
                + "</p>"
            )
        for name, s in m["signals"].items():
            drop = " <span class='drift'>dropped</span>" if s["dropped"] else ""
            parts.append(
                f"<p>signal {e(name)}: {_fmt(s['rate'], '.4f')} per prediction, baseline "
                f"{_fmt(s['baseline'], '.4f')}{drop}</p>"
            )
        parts.append("</div>")
    parts.append("<h2>Recent alerts</h2>")
    if not state.get("alerts"):
        parts.append("<p class='muted'>none</p>")
    else:
        parts.append("<table><tr><th>time</th><th>status</th><th>alert</th><th></th></tr>")
        for a in state["alerts"]:
            stamp = time.strftime("%H:%M:%S", time.localtime(a["at"]))
            cls = "firing" if a["status"] == "firing" else "resolved"
            parts.append(
                f"<tr><td>{stamp}</td><td><span class='{cls}'>{e(a['status'])}</span></td>"
                f"<td>{e(a['alert'])}</td><td>{e(a['summary'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
