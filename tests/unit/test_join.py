"""The outcome join: out-of-order, late, duplicated and missing outcomes, bounded memory."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.join import Joined, JoinResult, JoinStore


def store(**kwargs: float) -> JoinStore[str, int]:
    params = {"ttl_s": 100.0, "max_predictions": 1000, "max_outcomes": 1000} | kwargs
    return JoinStore(**params)  # type: ignore[arg-type]


def test_an_outcome_joins_its_prediction_and_reports_the_label_delay() -> None:
    s = store()
    assert s.add_prediction("a", 10.0, "pred-a") is JoinResult.PENDING
    joined = s.add_outcome("a", 25.0, 1)
    assert isinstance(joined, Joined)
    assert (joined.prediction, joined.label, joined.delay_s) == ("pred-a", 1, 15.0)
    assert s.counts.joined == 1


def test_an_outcome_that_arrives_first_waits_for_its_prediction() -> None:
    s = store()
    assert s.add_outcome("a", 30.0, 0) is JoinResult.PENDING
    joined = s.add_prediction("a", 20.0, "pred-a")
    assert isinstance(joined, Joined) and joined.label == 0 and joined.delay_s == 10.0


def test_duplicates_of_either_kind_are_recognised_and_ignored() -> None:
    s = store()
    s.add_prediction("a", 1.0, "first")
    assert s.add_prediction("a", 2.0, "second") is JoinResult.DUPLICATE
    assert isinstance(s.add_outcome("a", 3.0, 1), Joined)
    assert s.add_outcome("a", 4.0, 0) is JoinResult.DUPLICATE
    s.add_outcome("b", 5.0, 1)
    assert s.add_outcome("b", 6.0, 1) is JoinResult.DUPLICATE
    assert (s.counts.duplicate_predictions, s.counts.duplicate_outcomes) == (1, 2)


def test_predictions_expire_after_the_ttl_in_event_time() -> None:
    s = store(ttl_s=60.0)
    s.add_prediction("old", 0.0, "p")
    s.add_prediction("new", 50.0, "p")
    s.advance(61.0)
    assert s.counts.expired == 1
    assert s.add_outcome("old", 61.0, 1) is JoinResult.PENDING  # too late to join; it waits
    assert isinstance(s.add_outcome("new", 62.0, 1), Joined)
    s.advance(200.0)
    assert (s.counts.expired, s.counts.unmatched) == (1, 1)


def test_an_outcome_older_than_the_watermark_minus_ttl_is_late() -> None:
    s = store(ttl_s=10.0)
    s.advance(100.0)
    assert s.add_outcome("x", 50.0, 1) is JoinResult.LATE
    assert s.counts.late == 1 and len(s) == 0


def test_full_stores_drop_their_oldest_entries_and_count_them() -> None:
    s = store(max_predictions=3, max_outcomes=2)
    for i in range(5):
        s.add_prediction(f"p{i}", float(i), "x")
    for i in range(4):
        s.add_outcome(f"o{i}", float(i), 1)
    assert len(s) == 5
    assert (s.counts.evicted_predictions, s.counts.expired) == (2, 2)
    assert (s.counts.evicted_outcomes, s.counts.unmatched) == (2, 2)


@pytest.mark.parametrize(
    ("name", "value"), [("ttl_s", 0), ("max_predictions", 0), ("max_outcomes", 0)]
)
def test_bad_settings_are_rejected(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{name} must be"):
        store(**{name: value})


events = st.lists(
    st.tuples(
        st.sampled_from(["prediction", "outcome", "tick"]),
        st.integers(0, 30).map(lambda i: f"id{i}"),
        st.floats(0, 500, allow_nan=False),
    ),
    max_size=200,
)


@given(events, st.integers(1, 20), st.integers(1, 20))
def test_every_event_is_accounted_for_and_memory_stays_bounded(
    sequence: list[tuple[str, str, float]], max_predictions: int, max_outcomes: int
) -> None:
    s = store(ttl_s=50.0, max_predictions=max_predictions, max_outcomes=max_outcomes)
    added = {"prediction": 0, "outcome": 0}
    for kind, key, ts in sequence:
        if kind == "prediction":
            s.add_prediction(key, ts, key)
        elif kind == "outcome":
            s.add_outcome(key, ts, 1)
        else:
            s.advance(ts)
        added[kind] = added.get(kind, 0) + 1
        assert len(s._predictions) <= max_predictions and len(s._outcomes) <= max_outcomes
    c = s.counts
    waiting_predictions = sum(1 for _ in s.waiting_predictions())
    assert (
        added["prediction"] == c.duplicate_predictions + c.joined + c.expired + waiting_predictions
    )
    assert added["outcome"] == (
        c.duplicate_outcomes + c.late + c.joined + c.unmatched + len(s._outcomes)
    )


@given(events)
def test_state_round_trips_through_json_and_continues_identically(
    sequence: list[tuple[str, str, float]],
) -> None:
    half = len(sequence) // 2
    s = store(ttl_s=50.0, max_predictions=10, max_outcomes=10)

    def feed(target: JoinStore[str, int], part: list[tuple[str, str, float]]) -> list[object]:
        out: list[object] = []
        for kind, key, ts in part:
            if kind == "prediction":
                out.append(target.add_prediction(key, ts, key))
            elif kind == "outcome":
                out.append(target.add_outcome(key, ts, 1))
            else:
                target.advance(ts)
        return out

    feed(s, sequence[:half])
    restored = JoinStore.from_state(json.loads(json.dumps(s.to_state())))
    assert feed(restored, sequence[half:]) == feed(s, sequence[half:])
    assert restored.to_state() == s.to_state()


def test_a_state_of_version_1_with_entries_as_lists_is_still_read() -> None:
    s: JoinStore[str, int] = JoinStore(ttl_s=100.0, max_predictions=10, max_outcomes=10)
    s.add_prediction("a", 1.0, "pa")
    s.add_prediction("b", 2.0, "pb")
    s.add_outcome("b", 3.0, 1)
    s.add_outcome("c", 4.0, 0)  # waits for its prediction
    state = json.loads(json.dumps(s.to_state()))
    assert state["version"] == 2 and state["predictions"]["b"] == ["pb", 2.0, True]
    old = {
        **state,
        "version": 1,
        "predictions": [[k, *e] for k, e in state["predictions"].items()],
        "outcomes": [[k, *e] for k, e in state["outcomes"].items()],
    }
    restored = JoinStore.from_state(old)
    assert restored.to_state() == s.to_state()
    assert restored.add_prediction("c", 5.0, "pc") == Joined("pc", 0, 5.0, 4.0)
    with pytest.raises(ValueError, match="version"):
        JoinStore.from_state({**state, "version": 3})
