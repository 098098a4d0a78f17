"""Two instances in one consumer group with the Kafka checkpoint store; one is killed
with SIGKILL. The survivor takes its partitions, restores their state from the state
topic, and ends with the counts, joins and drift statistics of a single instance that
ran over the same events on its own.

The three topics have two partitions each and every event is keyed by its model, so
a model's predictions, outcomes and signals share a partition number (co-partitioned):
`alpha` and `beta` land in partition 0, `churn` and `ads` in partition 1.
"""

from __future__ import annotations

import dataclasses
import json
import random
import signal
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner.default import murmur2

from driftline_testing import (
    CLIENTS,
    ORDER_FREE,
    Daemon,
    TopicSet,
    create_topics,
    produce,
    unique,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)

MODELS = ("alpha", "beta", "churn", "ads")
PER_MODEL = 6_000
T0 = 1_700_000_000.0


def events(seed: int = 5) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(PER_MODEL):
        for model in MODELS:
            shift = 0.7 if i > PER_MODEL * 0.6 and model in ("beta", "churn") else 0.0
            score = rng.random()
            key = f"{model}-{i}"
            out.append(
                (
                    "predictions",
                    {
                        "id": key,
                        "model": model,
                        "timestamp": T0 + i,
                        "features": {
                            "amount": rng.lognormvariate(3.0 + shift, 1.0),
                            "plan": rng.choice(["basic", "plus", "pro"]),
                        },
                        "prediction": round(score, 6),
                    },
                )
            )
            if rng.random() < 0.7:
                label = int(score >= 0.5) ^ int(rng.random() < 0.2)
                outcome = {"id": key, "model": model, "label": label, "timestamp": T0 + i + 5}
                out.append(("outcomes", outcome))
            if rng.random() < 0.05:
                signal_event = {"model": model, "signal": "conversion", "value": 1}
                out.append(("signals", signal_event | {"timestamp": T0 + i}))
    return out


def order_free(daemon: Daemon) -> dict[Any, float]:
    return {key: v for key, v in daemon.samples().items() if key[0] in ORDER_FREE}


@pytest.mark.parametrize("client", CLIENTS)
def test_the_survivor_takes_over_the_killed_instances_partitions_with_their_state(
    kafka_bootstrap: str, daemons: list[Daemon], tmp_path: Path, client: str
) -> None:
    assert {(murmur2(m.encode()) & 0x7FFFFFFF) % 2 for m in MODELS} == {0, 1}
    topics = TopicSet()
    create_topics(kafka_bootstrap, [topics.predictions, topics.outcomes, topics.signals], 2)
    create_topics(kafka_bootstrap, [topics.dead_letter, topics.alerts])
    stream = events()
    topic = {"predictions": topics.predictions, "outcomes": topics.outcomes}
    topic["signals"] = topics.signals
    records = [(topic[s], json.dumps(e).encode()) for s, e in stream]
    cuts = [0, len(records) * 4 // 10, len(records) * 7 // 10, len(records)]
    parts = [records[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    by_model = _model_key

    env = {
        "DRIFTLINE_STATE__STORE": "kafka",
        "DRIFTLINE_STATE__TOPIC": unique("state"),
        "DRIFTLINE_STATE__CHECKPOINT_INTERVAL_S": "0.5",
        "DRIFTLINE_KAFKA__MAX_POLL_RECORDS": "200",
        "DRIFTLINE_KAFKA__CLIENT": client,
    }
    produce(kafka_bootstrap, parts[0], key=by_model)
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    first = Daemon(kafka_bootstrap, topics, first_dir, env=env).start()
    daemons.append(first)
    wait_for(lambda: first.events() >= 2_000, 60, "the first instance to consume")
    second = Daemon(kafka_bootstrap, topics, second_dir, env=env).start()
    daemons.append(second)
    # The first gives one shard away with its state; the second takes it over.
    wait_for(lambda: "restored shard" in second.log(), 60, "the second to take a shard")
    produce(kafka_bootstrap, parts[1], key=by_model)

    def shared() -> bool:
        # Both consumed and saved their shards since.
        return (
            first.value("driftline_checkpoints_total") > 0
            and second.value("driftline_checkpoints_total") > 0
            and first.events() + second.events() >= cuts[2]
        )

    wait_for(shared, 120, "both instances to consume and save their shard")
    assert second.process is not None
    second.process.send_signal(signal.SIGKILL)
    second.process.wait(10)

    produce(kafka_bootstrap, parts[2], key=by_model)
    total = len(records)
    wait_for(lambda: first.events() >= total, 180, "the survivor to count every event")

    # The same events, one instance on its own (its own group and local state).
    alone_dir = tmp_path / "alone"
    alone_dir.mkdir()
    alone_topics = dataclasses.replace(topics, group=topics.group + "-alone")
    alone = Daemon(
        kafka_bootstrap, alone_topics, alone_dir, env={"DRIFTLINE_KAFKA__CLIENT": client}
    ).start()
    daemons.append(alone)
    wait_for(lambda: alone.events() >= total, 180, "the single instance to count every event")

    assert first.events() == total, "nothing lost, nothing counted twice"
    assert first.log().count("restored shard") >= 1, "the survivor restored the dead one's shard"

    def differences() -> dict[Any, Any]:
        # Model figures are published at most once a second after the counts.
        got, want = order_free(first), order_free(alone)
        keys = set(got) | set(want)
        return {
            k: (got.get(k), want.get(k))
            for k in keys
            if got.get(k) != want.get(k) and want.get(k) == want.get(k)
        }

    try:
        wait_for(lambda: not differences(), 10, "the same figures")
    except AssertionError:
        assert differences() == {}  # shows them
    want = order_free(alone)
    drifted = {
        dict(labels)["model"]
        for (name, labels), v in want.items()
        if name == "driftline_model_drift" and v == 1
    }
    assert drifted == {"beta", "churn"}  # one model of each shard: both shards matter


def _model_key(value: bytes | None) -> bytes | None:
    return str(json.loads(value or b"{}")["model"]).encode()
