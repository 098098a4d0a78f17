"""Joining delayed outcomes to their predictions, in bounded memory.

Pure logic: no Kafka, no clock. Time is event time, and it advances through a
*watermark*, the newest event time seen. A prediction waits for its outcome until the
watermark passes its timestamp plus ``ttl_s``; an outcome that arrives before its
prediction waits as long in a separate buffer. Both stores are capped; what falls off
either end is counted, never silently lost.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, Generic, NamedTuple, TypeVar

__all__ = ["JoinCounts", "JoinResult", "JoinStore", "Joined"]

P = TypeVar("P")  # what a prediction carries (model, value, version, segments, ...)
L = TypeVar("L")  # an outcome's label

#: 2 keeps the entries as mappings of key to entry; 1 (still read) as lists of
#: ``[key, *entry]``.
_STATE_VERSION: Final = 2
_READABLE: Final = (1, 2)
#: What the store's mappings of entries are given to when its state is taken.
Wrap = Callable[[Mapping[str, tuple[Any, ...]]], Any]


class JoinResult(Enum):
    JOINED = "joined"  # matched now; see the returned pair
    PENDING = "pending"  # outcome waits for its prediction
    DUPLICATE = "duplicate"  # the id was seen before (prediction) or already joined (outcome)
    LATE = "late"  # outcome older than the watermark minus the TTL: its prediction is gone


class Joined(NamedTuple, Generic[P, L]):
    """A prediction and its outcome (a tuple: made for every pair, it must be cheap)."""

    prediction: P
    label: L
    predicted_at: float
    labelled_at: float

    @property
    def delay_s(self) -> float:
        return self.labelled_at - self.predicted_at


@dataclass
class JoinCounts:
    """Cumulative counts; ``expired`` are predictions whose outcome never came in time,
    ``unmatched`` outcomes whose prediction never came, ``evicted_*`` entries dropped
    early because a store was full (they are also in ``expired`` / ``unmatched``)."""

    joined: int = 0
    expired: int = 0
    unmatched: int = 0
    duplicate_predictions: int = 0
    duplicate_outcomes: int = 0
    late: int = 0
    evicted_predictions: int = 0
    evicted_outcomes: int = 0


#: A stored prediction: (payload, timestamp, joined). A plain tuple, made for every
#: prediction, and replaced by one marked joined when its outcome comes.
_Prediction = tuple[P, float, bool]


@dataclass
class JoinStore(Generic[P, L]):
    """Predictions waiting for outcomes and outcomes waiting for predictions.

    Parameters
    ----------
    ttl_s
        How long (event time) a prediction waits for its outcome, and an outcome
        for its prediction.
    max_predictions, max_outcomes
        Capacity of each store; when full, the oldest entry is dropped and counted.

    Notes
    -----
    Memory is bounded by ``max_predictions + max_outcomes`` entries whatever the
    input. Entries are kept in arrival order and expire from the front, so an entry
    that arrives out of event-time order may outlive its TTL until the entries
    before it expire. A joined prediction stays (marked) until it expires so that
    a second outcome for it is recognised as a duplicate.
    """

    ttl_s: float
    max_predictions: int
    max_outcomes: int
    counts: JoinCounts = field(default_factory=JoinCounts)
    watermark: float = float("-inf")
    _predictions: OrderedDict[str, _Prediction[P]] = field(default_factory=OrderedDict)
    _outcomes: OrderedDict[str, tuple[L, float]] = field(default_factory=OrderedDict)
    #: Called with the payload of each prediction that expires without its outcome,
    #: and with the label of each outcome given up on (not part of the state).
    on_expired: Callable[[P], None] = field(default=lambda payload: None, repr=False)
    on_unmatched: Callable[[L], None] = field(default=lambda label: None, repr=False)

    def __post_init__(self) -> None:
        #: Whether a prediction of this key is stored (joined or not): ``dict.__contains__``
        #: itself, as cheap as a membership test can be.
        self.holds: Callable[[str], bool] = self._predictions.__contains__
        if not self.ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0, got {self.ttl_s!r}")
        for name in ("max_predictions", "max_outcomes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    def __len__(self) -> int:
        return len(self._predictions) + len(self._outcomes)

    def add_prediction(self, key: str, timestamp: float, payload: P) -> Joined[P, L] | JoinResult:
        """Store a prediction; returns the pair if its outcome was already waiting."""
        if timestamp > self.watermark:
            self._advance(timestamp)
        predictions = self._predictions
        if key in predictions:
            self.counts.duplicate_predictions += 1
            return JoinResult.DUPLICATE
        waiting = self._outcomes.pop(key, None) if self._outcomes else None
        predictions[key] = (payload, timestamp, waiting is not None)
        if len(predictions) > self.max_predictions:
            _, (old_payload, _, joined) = predictions.popitem(last=False)
            self.counts.evicted_predictions += 1
            if not joined:
                self.counts.expired += 1
                self.on_expired(old_payload)
        if waiting is None:
            return JoinResult.PENDING
        self.counts.joined += 1
        label, labelled_at = waiting
        return Joined(payload, label, timestamp, labelled_at)

    def add_outcome(self, key: str, timestamp: float, label: L) -> Joined[P, L] | JoinResult:
        """Join an outcome to its prediction, or keep it waiting for one."""
        if timestamp > self.watermark:
            self._advance(timestamp)
        predictions = self._predictions
        entry = predictions.get(key)
        if entry is not None:
            payload, predicted_at, joined = entry
            if joined:
                self.counts.duplicate_outcomes += 1
                return JoinResult.DUPLICATE
            predictions[key] = (payload, predicted_at, True)  # keeps its place
            self.counts.joined += 1
            return Joined(payload, label, predicted_at, timestamp)
        if key in self._outcomes:
            self.counts.duplicate_outcomes += 1
            return JoinResult.DUPLICATE
        if timestamp < self.watermark - self.ttl_s:
            self.counts.late += 1
            return JoinResult.LATE
        self._outcomes[key] = (label, timestamp)
        if len(self._outcomes) > self.max_outcomes:
            _, (dropped, _) = self._outcomes.popitem(last=False)
            self.counts.evicted_outcomes += 1
            self.counts.unmatched += 1
            self.on_unmatched(dropped)
        return JoinResult.PENDING

    def advance(self, timestamp: float) -> None:
        """Move the watermark (e.g. on a signal or an idle tick) and expire what is due."""
        if timestamp > self.watermark:
            self._advance(timestamp)

    def _advance(self, timestamp: float) -> None:
        if timestamp <= self.watermark:
            return
        self.watermark = timestamp
        horizon = timestamp - self.ttl_s
        predictions = self._predictions
        while predictions:
            key = next(iter(predictions))
            payload, predicted_at, joined = predictions[key]
            if predicted_at >= horizon:
                break
            del predictions[key]
            if not joined:
                self.counts.expired += 1
                self.on_expired(payload)
        outcomes = self._outcomes
        while outcomes:
            key = next(iter(outcomes))
            label, labelled_at = outcomes[key]
            if labelled_at >= horizon:
                break
            del outcomes[key]
            self.counts.unmatched += 1
            self.on_unmatched(label)

    def prediction(self, key: str) -> P | None:
        """The payload of a stored prediction (joined or not), if it is still kept."""
        entry = self._predictions.get(key)
        return None if entry is None else entry[0]

    def waiting_predictions(self) -> Iterator[P]:
        """Payloads of predictions still waiting for their outcome."""
        return (payload for payload, _, joined in self._predictions.values() if not joined)

    def entries(self, keep: Callable[[str], bool], wrap: Wrap = dict) -> dict[str, Any]:
        """The entries whose key ``keep`` accepts, JSON-safe, in the order they are kept
        (``wrap``: as for :meth:`to_state`)."""
        return {
            "watermark": None if self.watermark == float("-inf") else self.watermark,
            "predictions": wrap({k: e for k, e in self._predictions.items() if keep(k)}),
            "outcomes": wrap({k: e for k, e in self._outcomes.items() if keep(k)}),
        }

    def add_entries(
        self,
        entries: Mapping[str, Any],
        decode: Any = lambda payload: payload,
        decode_label: Any = lambda label: label,
        keep: Callable[[str], bool] = lambda key: True,
    ) -> None:
        """Take over the entries :meth:`entries` (or :meth:`to_state`) gave whose key
        ``keep`` accepts (of keys not held here), after those held; the watermark moves
        to theirs if it is ahead. Nothing expires or is evicted before the next event."""
        predictions = [
            (str(k), (decode(p), float(ts), bool(joined)))
            for k, p, ts, joined in _items(entries["predictions"])
            if keep(k)
        ]
        outcomes = [
            (str(k), (decode_label(label), float(ts)))
            for k, label, ts in _items(entries["outcomes"])
            if keep(k)
        ]
        self._predictions.update(predictions)
        self._outcomes.update(outcomes)
        if entries["watermark"] is not None:
            self.watermark = max(self.watermark, float(entries["watermark"]))

    def merge(self, other: JoinStore[P, L]) -> None:
        """Take over ``other``'s entries (of keys not held here), after those held; the
        watermark moves to its if it is ahead. Nothing expires or is evicted before the
        next event."""
        self._predictions.update(other._predictions)
        self._outcomes.update(other._outcomes)
        self.watermark = max(self.watermark, other.watermark)

    def discard(self, drop: Callable[[str], bool]) -> None:
        """Forget the entries whose key ``drop`` accepts (no expiry is counted)."""
        for store in (self._predictions, self._outcomes):
            for key in [k for k in store if drop(k)]:
                del store[key]

    def to_state(self, wrap: Wrap = dict) -> dict[str, Any]:
        """JSON-safe state. Its entries are mappings of key to ``(payload, timestamp,
        joined)`` and to ``(label, timestamp)``: copies, unless ``wrap`` is given the
        store's own mappings (for a writer that reads them at once and not after the
        next event, such as a checkpoint's: they are most of it)."""
        return {
            "version": _STATE_VERSION,
            "ttl_s": self.ttl_s,
            "max_predictions": self.max_predictions,
            "max_outcomes": self.max_outcomes,
            "watermark": None if self.watermark == float("-inf") else self.watermark,
            "counts": vars(self.counts).copy(),
            "predictions": wrap(self._predictions),
            "outcomes": wrap(self._outcomes),
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        decode: Any = lambda payload: payload,
        decode_label: Any = lambda label: label,
    ) -> JoinStore[Any, Any]:
        if state.get("version") not in _READABLE:
            raise ValueError(
                f"join state version must be one of {_READABLE}, got {state.get('version')!r}"
            )
        store: JoinStore[Any, Any] = cls(
            ttl_s=float(state["ttl_s"]),
            max_predictions=int(state["max_predictions"]),
            max_outcomes=int(state["max_outcomes"]),
            counts=JoinCounts(**state["counts"]),
        )
        store.add_entries(state, decode, decode_label)
        return store


def _items(entries: Mapping[str, Any] | list[Any]) -> Iterator[tuple[Any, ...]]:
    """``(key, *entry)`` of each entry, as state version 2 (a mapping) or 1 (a list of
    ``[key, *entry]``) holds them."""
    if isinstance(entries, Mapping):
        return ((key, *entry) for key, entry in entries.items())
    return (tuple(entry) for entry in entries)
