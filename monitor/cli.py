"""The ``driftline`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from monitor import __version__
from monitor.config import Settings, load_settings, masked_dump
from monitor.errors import ConfigError, DriftlineError
from monitor.logs import configure_logging

if TYPE_CHECKING:
    from monitor.reference import ModelReference

__all__ = ["main"]

log = logging.getLogger("driftline")

# flag destination -> settings key
_RUN_OVERRIDES = {
    "bootstrap_servers": ("kafka.bootstrap_servers", "--bootstrap-servers"),
    "group_id": ("kafka.group_id", "--group-id"),
    "http_host": ("http.host", "--http-host"),
    "http_port": ("http.port", "--http-port"),
    "state_dir": ("state.dir", "--state-dir"),
    "log_level": ("log.level", "--log-level"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"driftline: config error: {exc}", file=sys.stderr)
        return 2
    except DriftlineError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftline",
        description="Streaming production monitoring for machine-learning models.",
    )
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the monitoring daemon",
        description="Consume prediction, outcome and signal events from Kafka and serve "
        "Prometheus metrics. Settings: --config FILE, then DRIFTLINE_* variables, then flags.",
    )
    run.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("DRIFTLINE_CONFIG"),
        help="YAML settings file (default: $DRIFTLINE_CONFIG)",
    )
    run.add_argument("--bootstrap-servers", metavar="HOST:PORT")
    run.add_argument("--group-id", metavar="NAME")
    run.add_argument("--http-host", metavar="HOST", help="address /metrics binds to (127.0.0.1)")
    run.add_argument("--http-port", metavar="N", type=int, help="port of /metrics (9108)")
    run.add_argument("--state-dir", metavar="DIR")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument(
        "--local-broker",
        action="store_true",
        help="start the embedded in-memory Tansu broker at --bootstrap-servers "
        "(needs driftline[local]); its data is lost when driftline stops",
    )
    run.set_defaults(func=_run)

    profile = commands.add_parser(
        "profile",
        help="build a model's reference profile from training data",
        description="Summarise training data (CSV, JSON lines or Parquet) into a reference "
        "profile file for `models.NAME.profile`, so the daemon never needs the data itself. "
        "JSON lines may also be prediction events: their `features` and `prediction` are used.",
    )
    profile.add_argument("data", metavar="DATA", type=Path, help="the training data file")
    profile.add_argument("--model", required=True, help="the model's name")
    profile.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    profile.add_argument(
        "--format",
        choices=["csv", "jsonl", "parquet"],
        help="data format (default: from the file name)",
    )
    profile.add_argument(
        "--prediction-column",
        default="prediction",
        metavar="NAME",
        help="column holding the model's output (default: prediction)",
    )
    profile.add_argument(
        "--exclude",
        default="",
        metavar="COL,...",
        help="columns that are not features (ids, labels, timestamps)",
    )
    profile.add_argument(
        "--features", default="", metavar="COL,...", help="profile only these columns"
    )
    profile.add_argument("--bins", type=int, default=10, help="quantile bins per numeric feature")
    profile.add_argument(
        "--max-sample",
        type=int,
        default=10_000,
        help="values kept per numeric feature for KS (default 10000)",
    )
    profile.add_argument(
        "--top-k", type=int, default=50, help="categories kept per categorical feature (default 50)"
    )
    profile.add_argument("--seed", type=int, default=0)
    profile.set_defaults(func=_profile)

    replay = commands.add_parser(
        "replay",
        help="run the monitoring pipeline over a file of events, offline",
        description="Feed a JSON-lines file of prediction, outcome and signal events (one per "
        "line, in order) through the daemon's pipeline and print a summary per model. Uses "
        "the same settings as `run` (models, references, windows); Kafka is not contacted.",
    )
    replay.add_argument("file", metavar="FILE", type=Path, help="events, one JSON object a line")
    replay.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("DRIFTLINE_CONFIG"),
        help="YAML settings file (default: $DRIFTLINE_CONFIG)",
    )
    replay.add_argument(
        "--metrics-out",
        type=Path,
        metavar="FILE",
        help="write the final metrics here, in the Prometheus text format of /metrics",
    )
    replay.add_argument(
        "--alerts-out",
        type=Path,
        metavar="FILE",
        help="write the alert transitions here as JSON lines, as the daemon publishes them",
    )
    replay.add_argument(
        "--dead-letters",
        type=Path,
        metavar="FILE",
        help="write invalid lines here as JSON lines with their line number and reason",
    )
    replay.set_defaults(func=_replay)

    from monitor.simulate import SCENARIOS

    simulate = commands.add_parser(
        "simulate",
        help="produce realistic traffic with scripted drift scenarios",
        description="Produce prediction, outcome and signal events of two models (churn: "
        "binary, with a conversion signal; eta: regression) to Kafka, or as JSON lines to a "
        "file, in real time. After --change-after seconds the scenarios apply: "
        + ", ".join(SCENARIOS)
        + ". Kafka settings (topics, security) come from --config and DRIFTLINE_* as for run.",
    )
    simulate.add_argument(
        "--scenario",
        default="feature-drift",
        metavar="NAME[,NAME]",
        help="scenarios to apply after --change-after (default: feature-drift)",
    )
    simulate.add_argument("--bootstrap-servers", metavar="HOST:PORT")
    simulate.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("DRIFTLINE_CONFIG"),
        help="YAML settings file for the Kafka settings (default: $DRIFTLINE_CONFIG)",
    )
    simulate.add_argument(
        "--rate", type=float, default=200.0, help="predictions per second per model (200)"
    )
    simulate.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (default: never)"
    )
    simulate.add_argument(
        "--change-after", type=float, default=60.0, metavar="S", help="seconds before the change"
    )
    simulate.add_argument(
        "--label-delay", type=float, default=5.0, metavar="S", help="mean outcome delay (5 s)"
    )
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument(
        "--output",
        metavar="FILE",
        help="write JSON lines here ('-' for stdout) instead of sending to Kafka",
    )
    simulate.set_defaults(func=_simulate)

    demo = commands.add_parser(
        "demo",
        help="see driftline catch drift: local broker, simulator and daemon in one command",
        description="Start the embedded local broker, the simulator (two models; after "
        "--change-after seconds a feature drifts and conversions halve) and the daemon, and "
        "show what driftline sees: live in the terminal, and on the status page at "
        "http://127.0.0.1:9108/. Needs driftline[local]. Ctrl-C stops.",
    )
    demo.add_argument("--scenario", default="feature-drift,conversion-drop", metavar="NAME[,NAME]")
    demo.add_argument("--rate", type=float, default=200.0, help="predictions/s per model (200)")
    demo.add_argument(
        "--change-after", type=float, default=30.0, metavar="S", help="seconds before the drift"
    )
    demo.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    demo.add_argument("--http-port", type=int, default=9108, metavar="N")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--plain", action="store_true", help="plain lines instead of the live table")
    demo.set_defaults(func=_demo)
    return parser


def _run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for dest, (key, flag) in _RUN_OVERRIDES.items():
        value = getattr(args, dest)
        if value is not None:
            overrides[key] = value
            flags[key] = flag
    settings = load_settings(args.config, overrides=overrides, flags=flags)
    configure_logging(settings.log.level, settings.log.format)
    log.info(
        "driftline %s starting; effective config: %s",
        __version__,
        json.dumps(masked_dump(settings), sort_keys=True),
    )
    with ExitStack() as stack:
        if args.local_broker:
            _start_local_broker(settings, stack)
        return _serve(settings, stack)


def _serve(settings: Settings, stack: ExitStack) -> int:
    from monitor.daemon import build_daemon, tune_gc

    daemon = build_daemon(settings, stack)
    tune_gc()
    stop = threading.Event()
    install_signal_handlers(stop)
    daemon.service.run(stop)
    return 0


def _profile(args: argparse.Namespace) -> int:
    from monitor.profiling import build_reference

    return build_reference(args)


def _simulate(args: argparse.Namespace) -> int:
    from monitor import simulate

    try:
        scenarios = simulate.parse_scenarios(args.scenario)
    except ValueError as exc:
        choices = ", ".join(simulate.SCENARIOS)
        raise DriftlineError(f"--scenario: {exc}; choose from {choices}") from None
    if not args.rate > 0:
        raise DriftlineError(f"--rate must be > 0, got {args.rate}")
    overrides = (
        {}
        if args.bootstrap_servers is None
        else {"kafka.bootstrap_servers": args.bootstrap_servers}
    )
    settings = load_settings(
        args.config, overrides=overrides, flags={"kafka.bootstrap_servers": "--bootstrap-servers"}
    )
    configure_logging(settings.log.level, settings.log.format)
    traffic = simulate.Traffic(scenarios, args.change_after, args.label_delay, args.seed)
    stop = threading.Event()
    install_signal_handlers(stop)
    if args.output is not None:
        out = sys.stdout if args.output == "-" else open(args.output, "w")  # noqa: SIM115

        def write(stream: str, key: bytes, value: bytes) -> None:
            out.write(value.decode("utf-8", "replace") + "\n")

        try:
            progress = simulate.run(traffic, write, args.rate, args.duration, stop)
        finally:
            if out is not sys.stdout:
                out.close()
        log.info("wrote %d records", progress.records)
        return 0
    from monitor.kafka_io import KafkaSink

    sink = KafkaSink(settings.kafka)
    log.info(
        "simulating %s to %s at %.0f predictions/s per model; the change comes after %.0f s",
        ",".join(sorted(scenarios)),
        settings.kafka.bootstrap_servers,
        args.rate,
        args.change_after,
    )
    try:
        progress = simulate.run(traffic, sink.send, args.rate, args.duration, stop)
    finally:
        sink.close()
    log.info("sent %d records (%d send errors)", progress.records, sink.errors)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(args, install_signal_handlers)


def _replay(args: argparse.Namespace) -> int:
    from monitor.replay import run_replay

    settings = load_settings(args.config)
    configure_logging("ERROR", settings.log.format)
    return run_replay(args, settings)


def load_references(settings: Settings) -> dict[str, ModelReference]:
    """The reference files named in the settings; a bad one fails the start."""
    from monitor.daemon import load_references

    return load_references(settings)


def _start_local_broker(settings: Settings, stack: ExitStack) -> None:
    from monitor.daemon import start_local_broker

    start_local_broker(settings, stack)


def install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; finishing the current batch", signal.Signals(signum).name)
        stop.set()
        # A second Ctrl-C stops at once.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
