"""``driftline simulate``: realistic traffic with scripted scenarios, to Kafka or a file.

Two models: ``churn`` (binary: will the customer leave?) with a ``conversion`` signal
(the customer took the retention offer), and ``eta`` (regression: delivery minutes).
Outcomes arrive after an exponential delay; signals a second or so after their
prediction. After ``change_after_s`` the chosen scenarios apply:

=================  ==========================================================
``stable``         nothing changes
``feature-drift``  churn's ``monthly_spend`` shifts up by one standard deviation
``new-category``   churn's ``app_version`` gains ``5.0-beta`` (30% of traffic)
``concept-drift``  churn's outcomes no longer follow its scores for 30% of customers
``conversion-drop`` churn's conversion rate halves
``label-outage``   no more outcomes for either model
``bad-events``     a fifth of the records are invalid (bad JSON, missing fields, NaN)
=================  ==========================================================

The generator is pure and seeded (:class:`Traffic`); :func:`run` paces it in real time.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["SCENARIOS", "Traffic", "run"]

log = logging.getLogger(__name__)

SCENARIOS: Final = (
    "stable",
    "feature-drift",
    "new-category",
    "concept-drift",
    "conversion-drop",
    "label-outage",
    "bad-events",
)
PLANS: Final = ("basic", "standard", "premium")
REGIONS: Final = ("eu", "us", "apac", "latam")
VERSIONS: Final = ("4.1", "4.2", "4.3")
TRAFFIC: Final = ("low", "medium", "high")

#: A record: (stream, key, value).
Record = tuple[str, bytes, bytes]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class Traffic:
    """Seeded traffic of the two models; call :meth:`tick` with the simulated time."""

    scenarios: frozenset[str] = frozenset({"stable"})
    change_after_s: float = 30.0
    label_delay_s: float = 5.0
    seed: int = 0
    start: float = 0.0  # simulated time of the first tick
    _rng: random.Random = field(init=False, repr=False)
    _due: list[tuple[float, int, str, dict[str, Any]]] = field(init=False, repr=False)
    _n: int = field(init=False, default=0)
    _order: itertools.count[int] = field(init=False, repr=False, default_factory=itertools.count)

    def __post_init__(self) -> None:
        unknown = set(self.scenarios) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenario {sorted(unknown)[0]!r}; choose from {SCENARIOS}")
        self._rng = random.Random(self.seed)
        self._due = []

    def changed(self, now: float) -> bool:
        return now - self.start >= self.change_after_s

    def _on(self, scenario: str, now: float) -> bool:
        return scenario in self.scenarios and self.changed(now)

    def tick(self, now: float) -> list[Record]:
        """One prediction of each model at ``now``, plus the outcomes and signals now due."""
        self._n += 1
        records = [self._record("predictions", e) for e in (self._churn(now), self._eta(now))]
        if self._on("bad-events", now) and self._rng.random() < 0.25:
            records.append(("predictions", b"churn", self._bad()))
        while self._due and self._due[0][0] <= now:
            _, _, stream, event = heapq.heappop(self._due)
            if stream == "outcomes" and self._on("label-outage", now):
                continue
            records.append(self._record(stream, event))
        return records

    def pending(self) -> int:
        return len(self._due)

    def _later(self, at: float, stream: str, event: dict[str, Any]) -> None:
        heapq.heappush(self._due, (at, next(self._order), stream, event))

    @staticmethod
    def _record(stream: str, event: dict[str, Any]) -> Record:
        return (stream, event["model"].encode(), json.dumps(event).encode())

    def _churn(self, now: float) -> dict[str, Any]:
        r = self._rng
        spend_shift = 25.0 if self._on("feature-drift", now) else 0.0
        features: dict[str, Any] = {
            "tenure_days": round(r.expovariate(1 / 400), 1),
            "monthly_spend": round(max(0.0, r.gauss(60.0, 25.0) + spend_shift), 2),
            "support_calls": min(20, int(r.expovariate(1 / 1.5))),
            "plan": r.choices(PLANS, (0.5, 0.35, 0.15))[0],
            "app_version": (
                "5.0-beta"
                if self._on("new-category", now) and r.random() < 0.3
                else r.choices(VERSIONS, (0.2, 0.3, 0.5))[0]
            ),
            "discount": None if r.random() < 0.05 else round(r.random() * 0.3, 3),
        }
        region = r.choice(REGIONS)
        logit = (
            -1.2
            - features["tenure_days"] / 500
            + 0.35 * features["support_calls"]
            + (features["monthly_spend"] - 60.0) / 40
            - 0.5 * PLANS.index(features["plan"])
        )
        score = _sigmoid(logit)
        event_id = f"c-{self.seed}-{self._n}"
        event = {
            "id": event_id,
            "model": "churn",
            "model_version": "2.3.0",
            "timestamp": now,
            "features": features,
            "prediction": round(score, 5),
            "segment": {"region": region, "plan": features["plan"]},
        }
        churned = r.random() < score
        if self._on("concept-drift", now) and r.random() < 0.3:
            churned = not churned
        self._later(now + r.expovariate(1 / self.label_delay_s), "outcomes",
                    {"id": event_id, "model": "churn", "label": int(churned)})  # fmt: skip
        converts = 0.06 * (0.5 if self._on("conversion-drop", now) else 1.0)
        if r.random() < converts:
            self._later(now + r.uniform(0.2, 2.0), "signals",
                        {"id": event_id, "model": "churn", "signal": "conversion"})  # fmt: skip
        return event

    def _eta(self, now: float) -> dict[str, Any]:
        r = self._rng
        distance = round(r.lognormvariate(1.2, 0.6), 2)
        traffic = r.choices(TRAFFIC, (0.3, 0.5, 0.2))[0]
        minutes = 8 + 3.2 * distance * (1 + 0.4 * TRAFFIC.index(traffic))
        event_id = f"e-{self.seed}-{self._n}"
        event = {
            "id": event_id,
            "model": "eta",
            "model_version": "1.4.1",
            "timestamp": now,
            "features": {
                "distance_km": distance,
                "items": 1 + int(r.expovariate(1 / 2.0)),
                "traffic": traffic,
                "courier_rating": round(min(5.0, max(1.0, r.gauss(4.5, 0.4))), 2),
            },
            "prediction": round(minutes, 2),
            "segment": {"region": r.choice(REGIONS)},
        }
        actual = max(1.0, minutes + r.gauss(0, 4))
        self._later(now + r.expovariate(1 / self.label_delay_s), "outcomes",
                    {"id": event_id, "model": "eta", "label": round(actual, 2)})  # fmt: skip
        return event

    def _bad(self) -> bytes:
        """An invalid record; most still name their model, as a buggy producer's would."""
        kind = self._rng.choices(range(5), (0.3, 0.3, 0.15, 0.15, 0.1))[0]
        if kind == 0:
            return json.dumps({"model": "churn", "prediction": 0.5}).encode()  # no id
        if kind == 1:
            return json.dumps({"id": "x", "model": "churn", "prediction": [0.5]}).encode()
        if kind == 2:
            return b'{"id": "broken", "model": "churn", "prediction": '
        if kind == 3:
            return b'{"id": "nan", "model": "churn", "prediction": NaN}'
        return b"\xff\xfe not utf-8"


Send = Callable[[str, bytes, bytes], None]


@dataclass
class Progress:
    records: int = 0
    predictions: int = 0
    started: float = field(default_factory=time.monotonic)


def run(
    traffic: Traffic,
    send: Send,
    rate: float,
    duration_s: float | None,
    stop: threading.Event,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> Progress:
    """Send ``rate`` predictions a second (per model) until ``duration_s`` or ``stop``."""
    progress = progress or Progress()
    interval = 1.0 / rate
    begin = time.monotonic()
    traffic.start = clock()
    n = 0
    while not stop.is_set():
        elapsed = time.monotonic() - begin
        if duration_s is not None and elapsed >= duration_s:
            break
        target = int(elapsed * rate) + 1
        while n < target:
            for stream, key, value in traffic.tick(clock()):
                send(stream, key, value)
                progress.records += 1
            n += 1
            progress.predictions += 2
        stop.wait(max(0.0, (n * interval) - (time.monotonic() - begin)))
    return progress


def parse_scenarios(text: str) -> frozenset[str]:
    names = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = names - set(SCENARIOS)
    if unknown or not names:
        raise ValueError(
            f"unknown scenario {sorted(unknown)[0]!r}" if unknown else "no scenario given"
        )
    return names


def write_jsonl(records: Iterable[Record], out: Any = sys.stdout) -> int:
    """Write records as JSON lines (for ``driftline replay``); invalid ones as they are."""
    n = 0
    for _, _, value in records:
        out.write(value.decode("utf-8", "replace") + "\n")
        n += 1
    return n
