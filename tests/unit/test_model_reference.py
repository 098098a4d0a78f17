"""A model's reference from a profile file, time windows, and the other tasks' performance."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from driftline_testing import parse_samples, replay_samples, sample, series
from monitor.cli import load_references, main
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.replay import replay

T0 = 1_700_000_000.0


def predictions(n: int, seed: int, shift: float = 0.0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"id": f"{seed}-{i}", "model": "churn", "timestamp": T0 + i,
         "features": {"x": rng.gauss(shift, 1.0), "plan": rng.choice("abc")},
         "prediction": rng.random()}
        for i in range(n)
    ]  # fmt: skip


def test_a_profile_file_is_the_reference_from_the_first_event(tmp_path: Path) -> None:
    training = tmp_path / "train.jsonl"
    training.write_text("".join(json.dumps(e) + "\n" for e in predictions(3000, seed=1)))
    profile = tmp_path / "churn.json"
    assert main(["profile", str(training), "--model", "churn", "-o", str(profile)]) == 0
    profile_id = json.loads(profile.read_text())["profile_id"]
    settings = Settings.model_validate({"models": {"churn": {"profile": str(profile)}}})
    events = predictions(2000, seed=2) + predictions(1000, seed=3, shift=1.0)
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    got = parse_samples(
        replay(io.BytesIO(data), settings, load_references(settings)).metrics.decode()
    )
    # No learning period: all 3,000 predictions are tested, in three windows.
    assert sample(got, "driftline_reference_learning", model="churn") == 0
    assert sample(got, "driftline_reference_rows", model="churn") == 3000
    assert sample(got, "driftline_windows_total", model="churn") == 3
    assert sample(got, "driftline_reference_info", model="churn", profile_id=profile_id) == 1
    assert sample(got, "driftline_drifted_windows_total", model="churn") == 1
    assert sample(got, "driftline_feature_drift", model="churn", feature="x") == 1


def test_a_profile_of_another_model_fails_the_start_naming_the_key(tmp_path: Path) -> None:
    training = tmp_path / "train.jsonl"
    training.write_text("".join(json.dumps(e) + "\n" for e in predictions(100, seed=1)))
    profile = tmp_path / "fraud.json"
    assert main(["profile", str(training), "--model", "fraud", "-o", str(profile)]) == 0
    settings = Settings.model_validate({"models": {"churn": {"profile": str(profile)}}})
    with pytest.raises(ConfigError, match=r"models\.churn\.profile.*of model 'fraud'"):
        load_references(settings)


def test_windows_also_close_on_event_time() -> None:
    events = predictions(7000, seed=4)
    for i, event in enumerate(events[5000:]):
        event["timestamp"] = T0 + 5000 + i * 10.0  # 100 predictions per 1,000 s
    settings = Settings.model_validate({"defaults": {"window_seconds": 1000}})
    got = replay_samples(events, settings)
    # 2,000 predictions after the reference, a window per ~100 of them (not per 1,000).
    windows = sample(got, "driftline_windows_total", model="churn")
    assert windows is not None and 19 <= windows <= 20


def test_regression_and_multiclass_performance_equal_the_direct_computation() -> None:
    rng = random.Random(6)
    events: list[dict[str, Any]] = []
    abs_errors, hits = [], []
    for i in range(800):
        y, guess = rng.uniform(0, 100), rng.uniform(0, 100)
        abs_errors.append(abs(guess - y))
        label, cls = rng.choice("abc"), rng.choice("abc")
        hits.append(label == cls)
        for model, prediction, outcome in (("price", guess, y), ("kind", cls, label)):
            events.append({"id": str(i), "model": model, "timestamp": T0 + i,
                           "prediction": prediction, "features": {}})  # fmt: skip
            events.append({"id": str(i), "model": model, "timestamp": T0 + i + 1, "label": outcome})
    got = replay_samples(events)
    price = series(got, "driftline_performance", "metric", model="price")
    assert price["mae"] == pytest.approx(sum(abs_errors) / 800, rel=1e-12)
    assert price["rmse"] == pytest.approx((sum(e * e for e in abs_errors) / 800) ** 0.5, rel=1e-12)
    kind = series(got, "driftline_performance", "metric", model="kind")
    assert kind["accuracy"] == pytest.approx(sum(hits) / 800, abs=1e-12)
    assert "macro_f1" in kind
