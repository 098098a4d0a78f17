"""Decoding: every byte string gives an event or a DecodeError with a known reason."""

from __future__ import annotations

import gc
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import DecodeError
from monitor.events import REASONS, STREAMS, EventDecoder, Outcome, Prediction, Signal

decoder = EventDecoder()

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
event_keys = st.sampled_from(
    [
        "id",
        "model",
        "model_version",
        "timestamp",
        "features",
        "prediction",
        "segment",
        "label",
        "signal",
        "value",
        "other",
    ]
)
event_like = st.dictionaries(event_keys, json_values, max_size=6)


def decode_or_reason(stream: str, data: bytes | None) -> object:
    try:
        return decoder.decode(stream, data)
    except DecodeError as err:
        assert err.reason in REASONS
        assert err.detail
        return err


@settings(max_examples=500)
@given(stream=st.sampled_from(STREAMS), data=st.binary(max_size=300))
def test_arbitrary_bytes_give_an_event_or_a_decode_error(stream: str, data: bytes) -> None:
    result = decode_or_reason(stream, data)
    assert isinstance(result, (Prediction, Outcome, Signal, DecodeError))


@settings(max_examples=500)
@given(stream=st.sampled_from(STREAMS), obj=event_like)
def test_arbitrary_json_objects_give_an_event_or_a_decode_error(stream: str, obj: dict) -> None:
    data = json.dumps(obj, allow_nan=True).encode("utf-8", errors="surrogatepass")
    result = decode_or_reason(stream, data)
    if isinstance(result, Prediction):
        assert isinstance(result.id, str) and result.id
        assert all(not isinstance(v, float) or math.isfinite(v) for v in result.features.values())
        assert not isinstance(result.prediction, float) or math.isfinite(result.prediction)


@given(
    features=st.dictionaries(
        st.text(min_size=1, max_size=20),
        st.none()
        | st.booleans()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30),
        max_size=10,
    ),
    prediction=st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    model=st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z"),
)
def test_a_valid_prediction_decodes_to_the_same_values(
    features: dict, prediction: object, model: str
) -> None:
    raw = {"id": "p-1", "model": model, "features": features, "prediction": prediction}
    event = decoder.decode("predictions", json.dumps(raw).encode())
    assert isinstance(event, Prediction)
    assert event.model == model
    assert event.features == features
    assert event.prediction == prediction


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b'{"id": "a", "model": "m", "prediction": NaN}', "non_finite"),
        (b'{"id": "a", "model": "m", "prediction": -Infinity}', "non_finite"),
        (b'{"id": "a", "model": "m", "prediction": 1e400}', "non_finite"),
        (b'{"id": "a", "model": "m", "prediction": 1, "features": {"x": 1e400}}', "non_finite"),
        (b'{"id": "a", "model": "m", "prediction": 1', "invalid_json"),
        (b"\xc3\x28", "invalid_utf8"),
        (b'{"id": "a", "model": "m", "prediction": 1, "junk": "\xed\xa0\x80"}', "invalid_utf8"),
        (b'{"id": "\\ud800", "model": "m", "prediction": 1}', "invalid_json"),
        # NaN inside a string is just text: the JSON is invalid for another reason.
        (b'{"id": "\\ud800", "model": "NaN-Infinity", "prediction": 1}', "invalid_json"),
        (b'{"id": "a", "model": "m", "features": {"x": NaN', "non_finite"),
        (
            b'{"id": "a", "model": "m", "prediction": 1, "x": '
            + b"[" * 50_000
            + b"]" * 50_000
            + b"}",
            "too_deep",
        ),
        (b'{"model": "m", "prediction": 1}', "schema"),
        (b'{"id": 1, "model": "m", "prediction": 1}', "schema"),
        (b'{"id": "", "model": "m", "prediction": 1}', "schema"),
        (b'{"id": "a", "model": "has space", "prediction": 1}', "schema"),
        (b'{"id": "a", "model": "' + b"m" * 65 + b'", "prediction": 1}', "schema"),
        (b'{"id": "a", "model": "m", "prediction": true}', "schema"),
        (b'{"id": "a", "model": "m", "prediction": 1, "features": {"x": [1]}}', "schema"),
        (b'{"id": "a", "model": "m", "prediction": 1, "segment": {"region": 3}}', "schema"),
        (
            b'{"id": "a", "model": "m", "prediction": 1, "timestamp": "2025-01-01T00:00:00"}',
            "schema",
        ),
        (b'{"id": "a", "model": "m", "prediction": 1, "timestamp": -1}', "schema"),
        (b'"just a string"', "schema"),
    ],
)
def test_bad_predictions_are_rejected_with_their_reason(data: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decoder.decode("predictions", data)
    assert info.value.reason == reason


def test_records_over_the_size_cap_are_rejected_before_parsing() -> None:
    small = EventDecoder(max_bytes=64)
    data = b'{"id": "a", "model": "m", "prediction": 1, "pad": "' + b"x" * 64 + b'"}'
    with pytest.raises(DecodeError) as info:
        small.decode("predictions", data)
    assert info.value.reason == "too_large"
    assert "64-byte cap" in info.value.detail


def test_a_schema_error_keeps_the_model_name_when_it_is_valid() -> None:
    with pytest.raises(DecodeError) as info:
        decoder.decode("outcomes", b'{"id": "a", "model": "churn"}')
    assert (info.value.reason, info.value.model) == ("schema", "churn")
    assert "label" in info.value.detail


@pytest.mark.parametrize("stream", STREAMS)
def test_model_names_are_checked_on_every_stream_and_stay_invalid_when_seen_again(
    stream: str,
) -> None:
    fresh = EventDecoder()  # remembers the valid names it has seen
    body = {"predictions": '"id": "a", "prediction": 1', "outcomes": '"id": "a", "label": 1'}
    rest = body.get(stream, '"signal": "conversion"')
    for name, valid in [("churn", True), ("churn", True), ("has space", False), ("m\\n", False)]:
        data = f'{{"model": "{name}", {rest}}}'.encode()
        for _ in range(2):
            if valid:
                assert fresh.decode(stream, data).model == name
            else:
                with pytest.raises(DecodeError) as info:
                    fresh.decode(stream, data)
                assert (info.value.reason, info.value.model) == ("schema", None)
                assert "$.model" in info.value.detail


@pytest.mark.parametrize("name", ["", "x" * 129])
def test_feature_names_of_0_or_over_128_characters_are_schema_errors(name: str) -> None:
    fresh = EventDecoder()
    good = b'{"id": "a", "model": "churn", "prediction": 1, "features": {"x": 1, "y": "b"}}'
    assert fresh.decode("predictions", good).features == {"x": 1.0, "y": "b"}
    bad = json.dumps({"id": "a", "model": "churn", "prediction": 1, "features": {"x": 1, name: 2}})
    for _ in range(2):
        with pytest.raises(DecodeError) as info:
            fresh.decode("predictions", bad.encode())
        assert (info.value.reason, info.value.model) == ("schema", "churn")
        assert "`key` in `$.features`" in info.value.detail
    longest = {"id": "a", "model": "churn", "prediction": 1, "features": {"x" * 128: 1}}
    assert fresh.decode("predictions", json.dumps(longest).encode()).features == {"x" * 128: 1.0}


@pytest.mark.parametrize(
    ("stream", "data"),
    [
        ("predictions", b'{"id": "a", "model": "m", "prediction": 1, "features": {"x": 1}}'),
        ("outcomes", b'{"id": "a", "model": "m", "label": 1}'),
        ("signals", b'{"model": "m", "signal": "conversion"}'),
    ],
)
def test_events_are_not_tracked_by_the_garbage_collector(stream: str, data: bytes) -> None:
    # They hold strings, numbers and dicts of those: never a reference cycle.
    event = decoder.decode(stream, data)
    assert not gc.is_tracked(event)


def test_timestamps_are_epoch_seconds_whether_numbers_or_rfc3339() -> None:
    as_text = decoder.decode(
        "outcomes",
        b'{"id": "a", "model": "m", "label": 1, "timestamp": "2025-11-22T06:00:00+01:00"}',
    )
    as_number = decoder.decode(
        "outcomes", b'{"id": "a", "model": "m", "label": 1, "timestamp": 1763787600}'
    )
    assert as_text.timestamp == as_number.timestamp == 1763787600.0


def test_unknown_top_level_keys_are_ignored_and_defaults_filled() -> None:
    event = decoder.decode("signals", b'{"model": "m", "signal": "click", "extra": {"a": [1]}}')
    assert event == Signal(model="m", signal="click", id=None, value=1.0, timestamp=None)


def test_the_design_examples_decode() -> None:
    prediction = decoder.decode(
        "predictions",
        json.dumps(
            {
                "id": "p-7f3a",
                "model": "churn",
                "model_version": "v3",
                "timestamp": 1763790000.5,
                "features": {
                    "tenure_days": 412,
                    "plan": "pro",
                    "monthly_spend": 49.0,
                    "coupon": None,
                },
                "prediction": 0.82,
                "segment": {"region": "eu"},
            }
        ).encode(),
    )
    assert isinstance(prediction, Prediction)
    assert prediction.features == {
        "tenure_days": 412.0,
        "plan": "pro",
        "monthly_spend": 49.0,
        "coupon": None,
    }
    outcome = decoder.decode(
        "outcomes", b'{"id": "p-7f3a", "model": "churn", "timestamp": 1763876400, "label": 1}'
    )
    assert isinstance(outcome, Outcome) and outcome.label == 1
    signal = decoder.decode(
        "signals",
        b'{"id": "p-7f3a", "model": "churn", "timestamp": 1763790100, '
        b'"signal": "conversion", "value": 1}',
    )
    assert isinstance(signal, Signal) and signal.signal == "conversion"


def test_an_unknown_stream_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown stream"):
        decoder.decode("clicks", b"{}")
