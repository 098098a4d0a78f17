"""Event schemas (the contract in DESIGN.md) and their decoding from Kafka record values.

Three streams carry one JSON object per record:

- ``predictions``: :class:`Prediction`, what the model saw and said;
- ``outcomes``: :class:`Outcome`, the ground truth that arrives later;
- ``signals``: :class:`Signal`, a business proxy such as a conversion.

:class:`EventDecoder` is the only way bytes become events. Whatever the bytes, it
returns an event or raises :class:`~monitor.errors.DecodeError` with a reason code
from :data:`REASONS` (safe as a metric label) and a detail naming the field.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta, Struct

from monitor.errors import DecodeError

__all__ = [
    "MODEL_NAME_PATTERN",
    "REASONS",
    "STREAMS",
    "Event",
    "EventDecoder",
    "Outcome",
    "Prediction",
    "Signal",
    "StreamName",
]

StreamName = Literal["predictions", "outcomes", "signals"]
STREAMS: Final[tuple[StreamName, ...]] = ("predictions", "outcomes", "signals")

#: Why an event was rejected. Bounded: these are the only values of the ``reason``
#: dead-letter header and metric label.
REASONS: Final[tuple[str, ...]] = (
    "empty",  # no value (a tombstone) or zero bytes
    "too_large",  # over the size cap; rejected before parsing
    "invalid_utf8",
    "invalid_json",
    "non_finite",  # NaN, Infinity or a number out of float range
    "too_deep",  # nesting deeper than the parser accepts
    "schema",  # missing or mistyped field, bad model name, ...
)

MODEL_NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"

ModelName = Annotated[str, Meta(pattern=MODEL_NAME_PATTERN)]
_MODEL_NAME: Final = re.compile(MODEL_NAME_PATTERN)
#: Model and feature names found valid are remembered (up to this many of each) and
#: not checked again: msgspec's own checks would run on every event.
_MAX_KNOWN_NAMES: Final = 16_384
SignalName = Annotated[str, Meta(pattern=MODEL_NAME_PATTERN)]
EventId = Annotated[str, Meta(min_length=1, max_length=256)]
Version = Annotated[str, Meta(min_length=1, max_length=128)]
MAX_FEATURE_NAME: Final = 128
SegmentKey = Annotated[str, Meta(min_length=1, max_length=64)]
ShortText = Annotated[str, Meta(max_length=256)]
Timestamp = Annotated[float, Meta(ge=0)] | Annotated[_dt.datetime, Meta(tz=True)] | None
# JSON numbers arrive as float (ints are widened), strings and bools stay as they are.
FeatureValue = float | ShortText | bool | None


class _Event(Struct, kw_only=True, gc=False):
    """Fields common to every event; ``timestamp`` is epoch seconds after decoding."""

    # Matches MODEL_NAME_PATTERN: checked by EventDecoder, once per name.
    model: str
    # RFC 3339 text arrives as a datetime; EventDecoder makes it epoch seconds (a
    # __post_init__ would be a Python call on every event).
    timestamp: Timestamp = None

    def event_time(self, default: float) -> float:
        """The event's timestamp in epoch seconds, or ``default`` when it has none."""
        ts = self.timestamp
        return default if ts is None else ts.timestamp() if isinstance(ts, _dt.datetime) else ts


class Prediction(_Event, kw_only=True):
    """A model's prediction with the features it was made from."""

    id: EventId
    model_version: Version | None = None
    # Names are 1 to MAX_FEATURE_NAME characters: checked by EventDecoder, once per name.
    features: dict[str, FeatureValue] = {}
    prediction: float | ShortText
    segment: dict[SegmentKey, ShortText] = {}


class Outcome(_Event, kw_only=True):
    """The ground truth for the prediction with the same ``id``."""

    id: EventId
    label: float | ShortText | bool


class Signal(_Event, kw_only=True):
    """A business signal (conversion, click, ...), linked to a prediction by ``id``."""

    signal: SignalName
    id: EventId | None = None
    value: float = 1.0


Event = Prediction | Outcome | Signal

_TYPES: Final[dict[str, type[Prediction] | type[Outcome] | type[Signal]]] = {
    "predictions": Prediction,
    "outcomes": Outcome,
    "signals": Signal,
}


class EventDecoder:
    """Turns record values into events, or raises :class:`DecodeError`.

    Parameters
    ----------
    max_bytes
        Records longer than this are rejected before any parsing (``too_large``).
    """

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self._decoders = {name: msgspec.json.Decoder(tp) for name, tp in _TYPES.items()}
        self._models: set[str] = set()
        self._feature_names: set[str] = set()

    def decode(self, stream: str, data: bytes | None) -> Event:
        """Decode one record value of ``stream`` (``predictions``, ``outcomes``, ``signals``)."""
        decoded = self.decode_many(stream, (data,))[0]
        if isinstance(decoded, DecodeError):
            raise decoded
        return decoded

    def decode_many(self, stream: str, values: Iterable[bytes | None]) -> list[Event | DecodeError]:
        """Decode record values of one stream, in order: each becomes its event, or the
        :class:`DecodeError` that :meth:`decode` would raise for it (returned, not raised:
        one bad record costs no more than a good one)."""
        decoder = self._decoders.get(stream)
        if decoder is None:
            raise ValueError(f"unknown stream {stream!r}; expected one of {STREAMS}")
        decode = decoder.decode
        max_bytes = self.max_bytes
        models = self._models
        feature_names = self._feature_names
        predictions = stream == "predictions"
        out: list[Event | DecodeError] = []
        append = out.append
        for value in values:
            data: bytes | str
            # ASCII is valid UTF-8: only other bytes need the (copying) check, which
            # covers keys the schema ignores too.
            if not value or len(value) > max_bytes or not value.isascii():
                try:
                    data = self._text(value)
                except DecodeError as exc:
                    append(exc)
                    continue
            else:
                data = value
            try:
                event = decode(data)
            except (msgspec.DecodeError, RecursionError) as exc:
                append(_decode_error(exc, data))
                continue
            if event.timestamp.__class__ is _dt.datetime:
                event.timestamp = event.timestamp.timestamp()
            model = event.model
            if model not in models:
                if _MODEL_NAME.fullmatch(model) is None:
                    append(
                        DecodeError(
                            "schema",
                            f"Expected `str` matching regex {MODEL_NAME_PATTERN!r} - at `$.model`",
                        )
                    )
                    continue
                if len(models) < _MAX_KNOWN_NAMES:
                    models.add(model)
            if predictions and not feature_names.issuperset(event.features):  # type: ignore[union-attr]
                error = self._check_feature_names(event.features, model)  # type: ignore[union-attr]
                if error is not None:
                    append(error)
                    continue
            append(event)
        return out

    def _text(self, data: bytes | None) -> str:
        """``data`` as text, or the :class:`DecodeError` for an empty, oversized or
        non-UTF-8 value."""
        if not data:
            raise DecodeError("empty", "record has no value")
        if len(data) > self.max_bytes:
            raise DecodeError(
                "too_large", f"record is {len(data)} bytes, over the {self.max_bytes}-byte cap"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("invalid_utf8", f"invalid UTF-8 at byte {exc.start}") from None

    def _check_feature_names(
        self, features: dict[str, FeatureValue], model: str
    ) -> DecodeError | None:
        for name in features:
            if name in self._feature_names:
                continue
            if not 0 < len(name) <= MAX_FEATURE_NAME:
                bound = ">= 1" if not name else f"<= {MAX_FEATURE_NAME}"
                return DecodeError(
                    "schema", f"Expected `str` of length {bound} - at `key` in `$.features`", model
                )
            if len(self._feature_names) < _MAX_KNOWN_NAMES:
                self._feature_names.add(name)
        return None


def _decode_error(exc: Exception, data: bytes | str) -> DecodeError:
    """The :class:`DecodeError` for what msgspec (or the recursion limit) raised."""
    if isinstance(exc, RecursionError):
        return DecodeError("too_deep", "JSON nesting is too deep")
    text = data if isinstance(data, str) else data.decode("utf-8")
    detail = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        reason = "non_finite" if detail.startswith("Number out of range") else "schema"
        return DecodeError(reason, detail, _model_of(text))
    reason = "non_finite" if _has_non_finite_token(text) else "invalid_json"
    return DecodeError(reason, detail)


class _ModelOnly(Struct):
    model: ModelName | None = None


_model_decoder = msgspec.json.Decoder(_ModelOnly)


def _model_of(text: str) -> str | None:
    try:
        return _model_decoder.decode(text).model
    except (msgspec.DecodeError, RecursionError):
        return None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NON_FINITE = re.compile(r"(?<![\w.])-?(?:NaN|Infinity)(?![\w.])")


def _has_non_finite_token(text: str) -> bool:
    """A ``NaN`` or ``Infinity`` literal outside strings (only called on invalid JSON)."""
    if "NaN" not in text and "Infinity" not in text:
        return False
    return _NON_FINITE.search(_STRING.sub('""', text)) is not None
