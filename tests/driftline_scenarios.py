"""Seeded event streams with known answers, shared by unit and end-to-end tests.

Each scenario returns plain event dicts (as producers would send them) together
with what driftline must conclude from them, computed directly from the data.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

T0 = 1_700_000_000.0  # event time of the first event of a scenario, epoch seconds

NUMERIC = [f"num_{j}" for j in range(7)]
CATEGORICAL = [f"cat_{j}" for j in range(3)]
SHIFTED_NUMERIC = "num_0"  # +1 sigma in the drift phase
NEW_CATEGORY_FEATURE = "cat_0"  # gains the label "brand-new" in the drift phase
LABELS = ["red", "green", "blue", "black"]


@dataclass
class DriftScenario:
    """``reference`` rows, then ``stationary`` ones, then ``drifted`` ones, of one model."""

    model: str
    reference: list[dict[str, Any]]
    stationary: list[dict[str, Any]]
    drifted: list[dict[str, Any]]

    @property
    def predictions(self) -> list[dict[str, Any]]:
        return self.reference + self.stationary + self.drifted


def drift_scenario(
    model: str = "churn",
    seed: int = 0,
    n_reference: int = 5000,
    n_stationary: int = 10_000,
    n_drifted: int = 10_000,
    t0: float = T0,
) -> DriftScenario:
    """10 features (7 numeric of different shapes, 3 categorical); in the drifted phase
    ``num_0`` shifts by one standard deviation and ``cat_0`` gains a new label (20%)."""
    rng = np.random.default_rng(seed)
    total = n_reference + n_stationary + n_drifted
    start_drift = n_reference + n_stationary
    rows = []
    for i in range(total):
        drifted = i >= start_drift
        features: dict[str, Any] = {
            "num_0": float(rng.normal(50.0, 10.0)) + (10.0 if drifted else 0.0),
            "num_1": float(rng.lognormal(0.0, 0.5)),
            "num_2": float(rng.uniform(-1.0, 1.0)),
            "num_3": int(rng.poisson(4.0)),
            "num_4": float(rng.exponential(2.0)),
            "num_5": None if rng.random() < 0.02 else float(rng.normal(0.0, 1.0)),
            "num_6": float(rng.gamma(2.0, 3.0)),
            "cat_0": "brand-new" if drifted and rng.random() < 0.2 else LABELS[rng.integers(4)],
            "cat_1": ["ios", "android", "web"][rng.choice(3, p=[0.5, 0.3, 0.2])],
            "cat_2": None if rng.random() < 0.01 else f"region-{rng.integers(8)}",
        }
        score = 1 / (1 + math.exp(-(features["num_0"] - 50.0) / 10.0 - features["num_2"]))
        rows.append(
            {
                "id": f"{model}-{i}",
                "model": model,
                "timestamp": t0 + i * 0.1,
                "features": features,
                "prediction": round(score, 6),
            }
        )
    return DriftScenario(
        model, rows[:n_reference], rows[n_reference:start_drift], rows[start_drift:]
    )


@dataclass
class JoinScenario:
    """Predictions, then their outcomes out of order; the answers computed directly."""

    model: str
    predictions: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]
    clock: dict[str, Any]  # an event far ahead that moves event time past every TTL
    joined: int
    expired: int
    unmatched: int
    duplicate_predictions: int
    duplicate_outcomes: int
    accuracy: float
    pairs: list[tuple[float, int]] = field(default_factory=list)  # (score, label) joined


def join_scenario(
    model: str = "fraud",
    seed: int = 1,
    n: int = 2000,
    ttl_s: float = 86_400.0,
    t0: float = T0 + 10 * 86_400.0,
) -> JoinScenario:
    """``n`` predictions one second apart (1% sent twice); outcomes for 70% of them,
    shuffled, 1 second to 5 hours late, 10% sent twice; 50 outcomes for ids that were
    never predicted. The clock event lies ``2 * ttl_s`` after the last prediction."""
    rng = random.Random(seed)
    predictions: list[dict[str, Any]] = []
    scores = {}
    for i in range(n):
        score = round(rng.random(), 6)
        scores[f"{model}-{i}"] = score
        event = {
            "id": f"{model}-{i}",
            "model": model,
            "timestamp": t0 + i,
            "features": {"amount": rng.lognormvariate(3.0, 1.0)},
            "prediction": score,
        }
        predictions.append(event)
        if rng.random() < 0.01:
            predictions.append(dict(event))
    duplicate_predictions = len(predictions) - n
    labelled = rng.sample(sorted(scores), int(0.7 * n))
    outcomes: list[dict[str, Any]] = []
    pairs = []
    for key in labelled:
        score = scores[key]
        # A decent model: the label agrees with the score 80% of the time.
        label = int(score >= 0.5) if rng.random() < 0.8 else int(score < 0.5)
        pairs.append((score, label))
        index = int(key.rsplit("-", 1)[1])
        event = {
            "id": key,
            "model": model,
            "timestamp": t0 + index + rng.uniform(1.0, 5 * 3600.0),
            "label": label,
        }
        outcomes.append(event)
        if rng.random() < 0.1:
            outcomes.append(dict(event))
    duplicate_outcomes = len(outcomes) - len(labelled)
    for j in range(50):
        outcomes.append(
            {"id": f"ghost-{j}", "model": model, "timestamp": t0 + j * 10.0, "label": 1}
        )
    rng.shuffle(outcomes)
    correct = sum(int(score >= 0.5) == label for score, label in pairs)
    clock = {
        "id": f"{model}-clock",
        "model": model,
        "signal": "tick",
        "timestamp": t0 + n + 2 * ttl_s,
    }
    return JoinScenario(
        model=model,
        predictions=predictions,
        outcomes=outcomes,
        clock=clock,
        joined=len(labelled),
        expired=n - len(labelled),
        unmatched=50,
        duplicate_predictions=duplicate_predictions,
        duplicate_outcomes=duplicate_outcomes,
        accuracy=correct / len(pairs),
        pairs=pairs,
    )


def error_stream(
    model: str, n_before: int, n_after: int, error_before: float, error_after: float, seed: int
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(prediction, outcome) pairs of a binary model whose error rate changes after
    ``n_before`` pairs."""
    rng = random.Random(seed)
    for i in range(n_before + n_after):
        score = rng.random()
        wrong = rng.random() < (error_before if i < n_before else error_after)
        label = int(score >= 0.5) ^ int(wrong)
        ts = T0 + i
        yield (
            {
                "id": f"{model}-{i}",
                "model": model,
                "timestamp": ts,
                "features": {"x": score},
                "prediction": score,
            },
            {"id": f"{model}-{i}", "model": model, "timestamp": ts + 1, "label": label},
        )
