"""``driftline demo``: a local broker, the simulator with scripted drift, and the daemon.

Everything runs in this process (the broker as a child process): the simulator and
the daemon's loop in threads, the live view in the main thread. On a terminal the
view is a rich table redrawn every second; otherwise (logs, CI) plain lines: each
alert as it fires or resolves, and a status line every ten seconds. Ctrl-C stops
everything cleanly.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any

from monitor.config import Settings, load_settings
from monitor.errors import DriftlineError

__all__ = ["run_demo"]

log = logging.getLogger("driftline")

DEMO_SCENARIOS = "feature-drift,conversion-drop"


def run_demo(args: argparse.Namespace, install_signal_handlers: Any) -> int:
    from monitor import simulate
    from monitor.daemon import build_daemon, start_local_broker
    from monitor.kafka_io import KafkaSink
    from monitor.local_broker import free_port, tansu_binary
    from monitor.logs import configure_logging

    check_args(args)
    tansu_binary()  # says how to install the local broker when it is missing
    scenarios = simulate.parse_scenarios(args.scenario)
    settings: Settings = load_settings(
        None,
        overrides={
            "kafka.bootstrap_servers": f"127.0.0.1:{free_port()}",
            "http.port": args.http_port,
            "alerts.resolve_after_s": 30,
            "log.level": "WARNING",
            # The local broker keeps nothing across runs: neither may the state.
            "state.store": "none",
        },
        flags={"http.port": "--http-port"},
    )
    # Alerts show as ALERT lines; the daemon's own warnings would repeat them.
    configure_logging("ERROR", "text")
    stop = threading.Event()
    with ExitStack() as stack:
        print("driftline demo: starting the local broker ...", flush=True)
        start_local_broker(settings, stack)
        daemon = build_daemon(settings, stack)
        url = f"http://{settings.http.host}:{daemon.server.port}/"
        print(
            f"driftline demo: the daemon serves its status page at {url} and /metrics;\n"
            f"  the simulator sends two models ({args.rate:.0f} predictions/s each); after "
            f"{args.change_after:.0f} s: {', '.join(sorted(scenarios))}.\n"
            "  The reference is learned from each model's first 5,000 predictions. "
            "Ctrl-C stops.",
            flush=True,
        )
        alerts: list[str] = []
        from monitor.alerts import summary as daemon_summary

        def on_tick(transitions: list[Any]) -> None:
            for t in transitions:
                c = t.alert.condition
                subject = f"/{c.subject}" if c.subject else ""
                alerts.append(
                    f"{time.strftime('%H:%M:%S')} ALERT {t.status.upper()} {c.alert} "
                    f"{c.model}{subject}: {daemon_summary(c)}"
                )

        daemon.service.observers.append(on_tick)
        sink = KafkaSink(settings.kafka)
        stack.callback(sink.close)
        traffic = simulate.Traffic(scenarios, args.change_after, label_delay_s=3.0, seed=args.seed)
        threads = [
            threading.Thread(
                target=simulate.run,
                args=(traffic, sink.send, args.rate, args.duration, stop),
                name="driftline-simulator",
                daemon=True,
            ),
            threading.Thread(
                target=daemon.service.run, args=(stop,), name="driftline-loop", daemon=True
            ),
        ]
        install_signal_handlers(stop)
        for thread in threads:
            thread.start()
        try:
            if sys.stdout.isatty() and not args.plain:
                _live(daemon.status, alerts, stop, args.duration)
            else:
                _plain(daemon.status, alerts, stop, args.duration)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        print("driftline demo: stopped.", flush=True)
    return 0


def _plain(status: Any, alerts: list[str], stop: threading.Event, duration: float | None) -> None:
    shown = 0
    last_status = time.monotonic()
    begin = time.monotonic()
    while not stop.wait(0.5):
        while shown < len(alerts):
            print(alerts[shown], flush=True)
            shown += 1
        if time.monotonic() - last_status >= 10:
            last_status = time.monotonic()
            text = status.text()
            if text:
                print(f"{time.strftime('%H:%M:%S')} status\n  " + text.replace("\n", "\n  "),
                      flush=True)  # fmt: skip
        if duration is not None and time.monotonic() - begin > duration + 5:
            break
    while shown < len(alerts):
        print(alerts[shown], flush=True)
        shown += 1


def _live(status: Any, alerts: list[str], stop: threading.Event, duration: float | None) -> None:
    from rich.console import Group
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text

    def view() -> Group:
        table = Table(title="driftline demo", expand=True)
        for column in ("model", "predictions", "reference", "drifted features", "performance",
                       "signals", "alerts"):  # fmt: skip
            table.add_column(column)
        for m in status.state()["models"]:
            perf = ", ".join(
                f"{k} {v:.3f}" for k, v in m["performance"].items()
                if k in ("accuracy", "auc", "mae") and v is not None
            )  # fmt: skip
            signals = ", ".join(
                f"{n} {s['rate']:.3f}/{s['baseline']:.3f}" + (" DROP" if s["dropped"] else "")
                for n, s in m["signals"].items()
                if s["rate"] is not None and s["baseline"] is not None
            )
            table.add_row(
                m["name"],
                f"{m['predictions']:,} ({m['rate']:.0f}/s)",
                m["reference"],
                Text(
                    ", ".join(m["drifted_features"]) or "none",
                    style="bold red" if m["drifted_features"] else "",
                ),  # fmt: skip
                perf,
                signals,
                Text(", ".join(m["firing"]) or "none", style="bold red" if m["firing"] else ""),
            )
        recent = Text("\n".join(alerts[-8:]) or "no alert yet", style="yellow")
        return Group(table, Text("recent alerts:", style="bold"), recent)

    begin = time.monotonic()
    with Live(view(), refresh_per_second=2, screen=False) as live:
        while not stop.wait(1.0):
            live.update(view())
            if duration is not None and time.monotonic() - begin > duration + 5:
                break
    for line in alerts:
        print(line)


def check_args(args: argparse.Namespace) -> None:
    if not args.rate > 0:
        raise DriftlineError(f"--rate must be > 0, got {args.rate}")
