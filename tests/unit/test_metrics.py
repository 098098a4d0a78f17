"""The Prometheus exposition is built from a telemetry snapshot at scrape time."""

from __future__ import annotations

import pytest

from monitor.metrics import make_registry, render
from monitor.source import Backoff
from monitor.telemetry import OTHER, BatchStats, LabelCap, Telemetry


def test_counts_appear_under_the_contract_names_and_labels() -> None:
    telemetry = Telemetry()
    stats = BatchStats()
    stats.events[("predictions", "churn", "ok")] += 3
    stats.events[("outcomes", "churn", "invalid")] += 1
    stats.dead_letters["schema"] += 1
    stats.event_time("predictions", 1_763_790_000.5)
    telemetry.add_batch(stats, 0.02)
    telemetry.set_consumer_lag({("predictions", 1): 12})
    registry = make_registry(telemetry, "1.2.3")
    value = registry.get_sample_value
    assert (
        value("driftline_events_total", {"stream": "predictions", "model": "churn", "status": "ok"})
        == 3
    )
    assert (
        value(
            "driftline_events_total", {"stream": "outcomes", "model": "churn", "status": "invalid"}
        )
        == 1
    )
    assert value("driftline_dead_letters_total", {"reason": "schema"}) == 1
    assert (
        value("driftline_last_event_timestamp_seconds", {"stream": "predictions"})
        == 1_763_790_000.5
    )
    assert value("driftline_consumer_lag", {"topic": "predictions", "partition": "1"}) == 12
    assert value("driftline_batch_duration_seconds_count") == 1
    assert value("driftline_batch_duration_seconds_bucket", {"le": "0.025"}) == 1
    assert value("driftline_batch_duration_seconds_bucket", {"le": "0.01"}) == 0
    assert value("driftline_build_info", {"version": "1.2.3"}) == 1
    assert b"driftline_events_total" in render(registry)


def test_a_scrape_reflects_batches_added_after_the_previous_scrape() -> None:
    telemetry = Telemetry()
    registry = make_registry(telemetry, "0")
    labels = {"stream": "signals", "model": "m", "status": "ok"}
    assert registry.get_sample_value("driftline_events_total", labels) is None
    stats = BatchStats()
    stats.events[("signals", "m", "ok")] += 2
    telemetry.add_batch(stats, 0.001)
    telemetry.add_batch(stats, 0.001)
    assert registry.get_sample_value("driftline_events_total", labels) == 4


def test_label_cap_admits_the_first_values_then_maps_to_other() -> None:
    cap = LabelCap(2, preset=["a"])
    assert [cap(v) for v in ["b", "c", "a", "b", "d"]] == ["b", OTHER, "a", "b", OTHER]
    assert cap.overflowed == 2
    assert len(cap) == 2
    with pytest.raises(ValueError, match="limit must be >= 1, got 0"):
        LabelCap(0)


def test_backoff_grows_to_its_maximum_and_stays_within_bounds() -> None:
    import random

    backoff = Backoff(0.5, 4.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(20)]
    assert all(0.25 <= d <= 4.0 for d in delays)
    assert max(delays[10:]) > 2.0
    with pytest.raises(ValueError, match="initial <= maximum"):
        Backoff(2.0, 1.0)


def test_security_settings_reach_the_kafka_client_and_secrets_are_unwrapped() -> None:
    from monitor.config import load_settings
    from monitor.kafka_io import client_options

    settings = load_settings(
        environ={
            "DRIFTLINE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "DRIFTLINE_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "DRIFTLINE_KAFKA__SASL_USERNAME": "svc",
            "DRIFTLINE_KAFKA__SASL_PASSWORD": "hunter2",
            "DRIFTLINE_KAFKA__SSL_CAFILE": "/ca.pem",
            "DRIFTLINE_KAFKA__SSL_KEYFILE": "/client.key",
        }
    )
    options = client_options(settings.kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "hunter2")
    assert (options["ssl_cafile"], options["ssl_keyfile"]) == ("/ca.pem", "/client.key")
    assert "ssl_certfile" not in options
