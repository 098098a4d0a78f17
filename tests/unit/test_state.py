"""Checkpointed state: a pipeline stopped anywhere, saved, restored and run on ends where
an uninterrupted one ends, bit for bit.

The stream mixes what a model's state holds: a learned reference then drifting windows
(pinned and rolling), segments, model versions, outcomes joined out of order (with
duplicates, late and unmatched ones), concept detectors on the errors and signals.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from monitor.alerts import AlertEngine, Condition
from monitor.config import Settings
from monitor.events import EventDecoder
from monitor.pipeline import Pipeline
from monitor.telemetry import BatchStats, LabelCap, Telemetry

T0 = 1_700_000_000.0


def stream(seed: int, n: int = 8_000) -> list[tuple[str, dict[str, Any]]]:
    """(stream name, event) pairs of two models, in event-time order but for outcomes."""
    rng = random.Random(seed)
    events: list[tuple[str, dict[str, Any]]] = []
    pending: list[tuple[float, dict[str, Any]]] = []
    for i in range(n):
        ts = T0 + i
        model = "churn" if i % 3 else "fraud"
        shift = 0.8 if i > n // 2 else 0.0
        score = min(1.0, max(0.0, rng.gauss(0.4 + shift / 4, 0.2)))
        event = {
            "id": f"{model}-{i}",
            "model": model,
            "timestamp": ts,
            "model_version": "v2" if i > n // 3 else "v1",
            "features": {
                "amount": rng.lognormvariate(3.0 + shift, 1.0),
                "age": rng.choice([None, rng.randint(18, 90)]),
                "plan": rng.choice(["a", "b", "c"] + (["new"] if shift else [])),
            },
            "segment": {"region": rng.choice(["eu", "us", "apac"])},
            "prediction": round(score, 6),
        }
        events.append(("predictions", event))
        if rng.random() < 0.02:
            events.append(("predictions", dict(event)))  # a duplicate
        if rng.random() < 0.7:
            wrong = rng.random() < (0.1 if i < n // 2 else 0.4)
            label = int(score >= 0.5) ^ int(wrong)
            outcome = {"id": event["id"], "model": model, "timestamp": ts + 1, "label": label}
            pending.append((ts + rng.uniform(1, 400), outcome))
        if rng.random() < 0.05:
            events.append(
                ("signals", {"model": model, "signal": "conversion", "value": 1, "timestamp": ts})
            )
        if rng.random() < 0.005:
            events.append(("outcomes", {"id": f"ghost-{i}", "model": model, "label": 1}))
        due = [p for p in pending if p[0] <= ts]
        pending = [p for p in pending if p[0] > ts]
        rng.shuffle(due)
        events.extend(("outcomes", o) for _, o in due)
    return events


def settings() -> Settings:
    return Settings.model_validate(
        {
            "defaults": {
                "reference_size": 1_500,
                "window_size": 300,
                "performance_window": 200,
                "segments": ["region"],
                "concept_detectors": ["adwin", "page_hinkley", "ddm", "kswin"],
            },
            "join": {"ttl_s": 600.0},
            "models": {"fraud": {"reference_mode": "rolling"}},
        }
    )


def run(pipeline: Pipeline, events: list[tuple[str, dict[str, Any]]]) -> None:
    decoder = EventDecoder(1 << 20)
    for name, raw in events:
        event = decoder.decode(name, json.dumps(raw).encode())
        pipeline.process(event, event.event_time(T0))
    pipeline.end_batch(0.0, force=True)


def saved(pipeline: Pipeline) -> dict[str, Any]:
    """Through text and back, as a checkpoint file holds it."""
    return json.loads(json.dumps(pipeline.to_state()))


def canonical(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True)


@pytest.mark.parametrize("seed", range(4))
def test_a_pipeline_restored_anywhere_ends_like_an_uninterrupted_one(seed: int) -> None:
    events = stream(seed)
    whole = Pipeline(settings())
    run(whole, events)
    rng = random.Random(100 + seed)
    for cut in sorted(rng.sample(range(1, len(events)), 3)):
        first = Pipeline(settings())
        run(first, events[:cut])
        second = Pipeline(settings())
        assert second.load_state(saved(first)) == []
        run(second, events[cut:])
        assert canonical(second.to_state()) == canonical(whole.to_state()), cut
        # What the metrics read, too (NaN-free fields compared directly).
        for a, b in zip(second.snapshots(), whole.snapshots(), strict=True):
            assert (a.joins, a.drifted_windows, a.concept_drifts) == (
                b.joins,
                b.drifted_windows,
                b.concept_drifts,
            )
            assert a.performance == b.performance
    churn = {s.name: s for s in whole.snapshots()}["churn"]
    # The stream exercised what it claims to: drift decided, outcomes joined, changes found.
    assert churn.drifted_windows > 0 and churn.joins["joined"] > 1000
    assert sum(churn.concept_drifts.values()) > 0 and churn.segment_reports


def test_a_model_whose_settings_changed_starts_afresh_and_is_reported() -> None:
    events = stream(7, n=6_000)
    first = Pipeline(settings())
    run(first, events)
    changed = Settings.model_validate(
        {
            **settings().model_dump(mode="json", exclude_unset=True),
            "models": {"fraud": {"reference_mode": "rolling"}, "churn": {"window_size": 500}},
        }
    )
    second = Pipeline(changed)
    assert second.load_state(saved(first)) == ["churn"]
    by_name = {s.name: s for s in second.snapshots()}
    assert by_name["churn"].learning and by_name["churn"].joins == {}
    assert not by_name["fraud"].learning and by_name["fraud"].joins  # kept
    # The join store is the pipeline's: its waiting predictions survive either way.
    assert second.join.to_state()["predictions"] == first.join.to_state()["predictions"]


def test_an_unusable_pipeline_state_is_refused_and_changes_nothing() -> None:
    pipeline = Pipeline(settings())
    run(pipeline, stream(3, n=500))
    before = canonical(saved(pipeline))
    with pytest.raises(ValueError):
        pipeline.load_state({"version": 99})
    assert canonical(saved(pipeline)) == before


def test_telemetry_label_caps_and_alerts_round_trip() -> None:
    telemetry = Telemetry()
    stats = BatchStats()
    stats.events[("predictions", "churn", "ok")] += 5
    stats.dead_letters["invalid_json"] += 2
    stats.future_timestamps["signals"] += 1
    stats.event_time("predictions", T0)
    telemetry.add_batch(stats, 0.01)
    restored = Telemetry()
    restored.load_state(json.loads(json.dumps(telemetry.to_state())))
    a, b = telemetry.snapshot(), restored.snapshot()
    assert (a.events, a.dead_letters, a.future_timestamps, a.last_event_timestamp) == (
        b.events,
        b.dead_letters,
        b.future_timestamps,
        b.last_event_timestamp,
    )
    assert b.batch_bucket_counts != a.batch_bucket_counts  # the process's own: not restored

    cap = LabelCap(2, preset=["x"])
    cap("y"), cap("z")
    again = LabelCap(2, preset=["x"])
    again.load_state(cap.to_state())
    assert (again("y"), again("z"), again.overflowed) == ("y", "__other__", 2)

    engine = AlertEngine(for_s={"FeatureDrift": 10.0})
    drift = Condition("FeatureDrift", "churn", "amount", {"psi": 0.3})
    engine.evaluate(T0, [drift])
    assert engine.evaluate(T0 + 10, [drift])[0].status == "firing"
    copy = AlertEngine(for_s={"FeatureDrift": 10.0})
    copy.load_state(json.loads(json.dumps(engine.to_state())))
    assert copy.evaluate(T0 + 20, [drift]) == []  # already firing: not again
    assert copy.active() == engine.active() == {("churn", "FeatureDrift", "warning"): 1}


def test_a_shard_moves_to_another_pipeline_and_ends_like_an_uninterrupted_one() -> None:
    """``churn`` lives in shard 1, ``fraud`` in shard 0: shard 1 leaves one pipeline for
    another part-way, which carries on with it."""
    events = stream(5, n=6_000)

    def shard_of(raw: dict[str, Any]) -> int:
        return 1 if raw["model"] == "churn" else 0

    def run_sharded(pipeline: Pipeline, part: list[tuple[str, dict[str, Any]]]) -> None:
        decoder = EventDecoder(1 << 20)
        for name, raw in part:
            event = decoder.decode(name, json.dumps(raw).encode())
            pipeline.process(event, event.event_time(T0), shard_of(raw))
        pipeline.end_batch(0.0, force=True)

    cut = len(events) // 2
    churn_after = [e for e in events[cut:] if e[1]["model"] == "churn"]
    whole = Pipeline(settings())
    run_sharded(whole, events[:cut] + churn_after)

    first = Pipeline(settings())
    run_sharded(first, events[:cut])
    assert first.models_in(1) == ["churn"] and first.models_in(0) == ["fraud"]
    moved = json.loads(json.dumps(first.shard_state(1)))
    first.drop_shard(1)
    assert [s.name for s in first.snapshots()] == ["fraud"]
    everything = first.join.entries(lambda key: True)
    assert not [k for k, *_ in everything["predictions"] if k.startswith("churn")]

    second = Pipeline(settings())
    assert second.add_shard(1, moved) == []
    run_sharded(second, churn_after)
    model = dict(second.to_state()["models"])["churn"]
    assert canonical(model) == canonical(dict(whole.to_state()["models"])["churn"])

    def churn(key: str) -> bool:
        return key.startswith("churn")

    assert second.join.entries(churn) == whole.join.entries(churn)


def test_telemetry_counts_leave_and_arrive_with_their_shard() -> None:
    telemetry = Telemetry()
    for shard, n in ((0, 3), (1, 5)):
        stats = BatchStats()
        stats.events[("predictions", "m", "ok")] += n
        stats.dead_letters["schema"] += n
        telemetry.add_counts({shard: stats}, 0.01)
    moved = json.loads(json.dumps(telemetry.shard_state(1)))
    telemetry.drop_shard(1)
    assert telemetry.snapshot().events == {("predictions", "m", "ok"): 3}
    other = Telemetry()
    other.add_shard(1, moved)
    assert other.snapshot().events == {("predictions", "m", "ok"): 5}
    assert other.snapshot().dead_letters == {"schema": 5}
    telemetry.drop_shard(0)
    assert telemetry.snapshot().events == {} and telemetry.snapshot().dead_letters == {}
