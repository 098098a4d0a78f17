"""kill -9 of the daemon at three random points: after each restart it resumes from its
last checkpoint, and it ends with the counts, joins and drift statistics of a daemon
that ran uninterrupted over the same events (no event lost, none counted twice).

Predictions are keyed by model, so each model's predictions keep their order in one
partition: the drift windows of both daemons hold the same rows. Outcomes are read
concurrently on their own topic; which side of a join comes first differs between runs,
so the order-dependent figures (the sliding performance window, concept detectors, and
signal rates, whose windows are counted in predictions) are not compared, but every
join count is.
"""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from driftline_testing import CLIENTS, ORDER_FREE, Daemon, TopicSet, produce, wait_for

pytestmark = pytest.mark.timeout(600)

PREDICTIONS = 50_000
T0 = 1_700_000_000.0


def events(seed: int = 11) -> list[tuple[str, dict[str, Any]]]:
    """Predictions of two models (drift in the second half), outcomes for 70% of them,
    conversions, and a few invalid records; as (stream, event)."""
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(PREDICTIONS):
        model = "churn" if i % 2 else "fraud"
        shift = 0.5 if i > PREDICTIONS * 0.6 else 0.0
        score = rng.random()
        out.append(
            (
                "predictions",
                {
                    "id": f"{model}-{i}",
                    "model": model,
                    "timestamp": T0 + i,
                    "features": {
                        "amount": rng.lognormvariate(3.0 + shift, 1.0),
                        "tenure": rng.gauss(24.0, 6.0),
                        "plan": rng.choice(["basic", "plus", "pro"]),
                    },
                    "prediction": round(score, 6),
                },
            )
        )
        if rng.random() < 0.7:
            label = int(score >= 0.5) ^ int(rng.random() < 0.2)
            outcome = {"id": f"{model}-{i}", "model": model, "label": label}
            out.append(("outcomes", outcome | {"timestamp": T0 + i + rng.uniform(1, 600)}))
        if rng.random() < 0.05:
            signal_event = {"model": model, "signal": "conversion", "value": 1}
            out.append(("signals", signal_event | {"timestamp": T0 + i}))
    return out


def compared(daemon: Daemon) -> dict[Any, float]:
    return {key: v for key, v in daemon.samples().items() if key[0] in ORDER_FREE}


@pytest.mark.parametrize("client", CLIENTS)
def test_kill_9_at_three_points_ends_like_an_uninterrupted_run(
    kafka_bootstrap: str, topics: TopicSet, daemons: list[Daemon], tmp_path: Path, client: str
) -> None:
    stream = events()
    topic = {"predictions": topics.predictions, "outcomes": topics.outcomes}
    topic["signals"] = topics.signals
    records = [(topic[s], json.dumps(e).encode()) for s, e in stream]
    records += [(topics.predictions, b"{not json")] * 25
    total = len(records)
    # Three kill points, one in each third of the middle 80% of the stream.
    rng = random.Random(2026)
    targets = [int(total * (0.1 + 0.8 * (k + rng.uniform(0.15, 0.85)) / 3)) for k in range(3)]
    produced = 0

    def produce_to(end: int) -> None:
        nonlocal produced
        produced += produce(kafka_bootstrap, records[produced:end], key=_model_key)

    # The uninterrupted run: its own group and state.
    (tmp_path / "steady").mkdir()
    steady_topics = dataclasses.replace(topics, group=topics.group + "-steady")
    steady = Daemon(
        kafka_bootstrap, steady_topics, tmp_path / "steady", env={"DRIFTLINE_KAFKA__CLIENT": client}
    )
    daemons.append(steady.start())

    # The crashing run: small batches, a checkpoint every two seconds, and the stream fed
    # to it a chunk at a time, each counted before the next. It is killed once it has
    # counted its target and written a checkpoint of its own: then the events counted
    # since its last checkpoint are lost, and the restart must count them again. (Given
    # the whole stream at once, librdkafka's consumer reads it all within a checkpoint
    # interval or two: a kill would land past the next point, or on a daemon idle with
    # all it read checkpointed.)
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    env = {
        "DRIFTLINE_STATE__CHECKPOINT_INTERVAL_S": "2",
        "DRIFTLINE_KAFKA__MAX_POLL_RECORDS": "200",
        "DRIFTLINE_KAFKA__CLIENT": client,
    }
    seen = []  # events counted when each daemon was killed
    for target in targets:
        daemon = Daemon(kafka_bootstrap, topics, crash_dir, env=env).start()
        daemons.append(daemon)
        while True:
            wait_for(lambda d=daemon: d.events() >= produced, 180, f"{produced} events counted")
            if daemon.events() >= target and daemon.value("driftline_checkpoints_total") >= 1:
                break
            produce_to(produced + 1000)
        seen.append(daemon.events())
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(10)
    produce_to(total)
    last = Daemon(kafka_bootstrap, topics, crash_dir, env=env).start()
    daemons.append(last)
    restored = [
        int(line.rsplit(", ", 1)[1].split()[0])
        for d in daemons[2:]
        for line in d.log().splitlines()
        if "restored checkpoint" in line
    ]
    print(f"\nkilled after >= {seen} events counted; restarts restored {restored}")
    assert len(restored) == 3, "every restart restores a checkpoint"
    # Each kill lost work done after its last checkpoint, which the restart did again.
    assert all(r <= s for r, s in zip(restored, seen, strict=True))
    assert any(r < s for r, s in zip(restored, seen, strict=True)), (restored, seen)

    for daemon in (steady, last):
        wait_for(lambda d=daemon: d.events() >= total, 180, "every event counted")
    # Settled: no further counting (nothing twice), then the figures agree.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert last.events() == total and steady.events() == total
    assert len(list(crash_dir.glob("state/checkpoint-*.json.gz"))) == 2
    got, want = compared(last), compared(steady)
    assert set(got) == set(want)
    different = {k: (got[k], want[k]) for k in want if got[k] != want[k] and want[k] == want[k]}
    assert different == {}
    # The scenario is not vacuous: drift was found, outcomes joined, letters counted.
    assert sum(v for (n, _), v in want.items() if n == "driftline_drifted_windows_total") > 0
    assert sum(v for (n, _), v in want.items() if n == "driftline_joins_total") > 30_000
    assert want[("driftline_dead_letters_total", frozenset({("reason", "invalid_json")}))] == 25


def _model_key(value: bytes | None) -> bytes | None:
    try:
        return str(json.loads(value or b"")["model"]).encode()
    except (ValueError, KeyError, TypeError):
        return None
