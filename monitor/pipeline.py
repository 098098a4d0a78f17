"""The per-model pipeline: decoded events in, per-model state and snapshots out.

Pure: no Kafka, no clock (the loop passes monotonic time to :meth:`Pipeline.end_batch`).
Used by the daemon's loop and by ``driftline replay`` alike, so both compute the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal

from monitor.config import Settings
from monitor.events import Event, Outcome, Prediction
from monitor.join import Joined, JoinResult, JoinStore, Wrap
from monitor.model import ModelMonitor, ModelSnapshot, Payload
from monitor.reference import ModelReference
from monitor.telemetry import OTHER, LabelCap

__all__ = ["Pipeline", "Status"]

Status = Literal["ok", "duplicate", "late", "unmatched"]
_STATE_VERSION: Final = 1
#: Separates model and id in join keys: ids are unique per model.
_SEP: Final = "\x1f"
#: Seconds between rebuilds of a busy model's snapshot.
SNAPSHOT_INTERVAL_S: Final = 1.0
_OUTCOME_STATUS: Final[dict[JoinResult, Status]] = {
    JoinResult.DUPLICATE: "duplicate",
    JoinResult.LATE: "late",
    JoinResult.PENDING: "ok",
}


class Pipeline:
    """Routes events to their model's monitor and joins outcomes to predictions.

    Models named in the settings, then the first others seen, up to
    ``limits.max_models``, are monitored; events of further models are counted under
    ``__other__`` and not monitored.
    """

    def __init__(
        self, settings: Settings, references: Mapping[str, ModelReference] | None = None
    ) -> None:
        self._settings = settings
        self._references = dict(references or {})
        self.model_label = LabelCap(settings.limits.max_models, preset=settings.models)
        self._models: dict[str, ModelMonitor] = {}
        # The shard (partition number) each model's events first came from: its state
        # is saved and moves with that shard.
        self._home: dict[str, int] = {}
        self._snapshots: tuple[ModelSnapshot, ...] = ()
        self._last_refresh = float("-inf")
        join = settings.join
        self.join: JoinStore[Payload, tuple[str, Any]] = JoinStore(
            join.ttl_s, join.max_predictions, join.max_outcomes
        )
        self._watch_join()

    def _watch_join(self) -> None:
        self.join.on_expired = lambda payload: self._model_event(payload[0], "expired")
        self.join.on_unmatched = lambda label: self._model_event(label[0], "unmatched")

    def _model_event(self, model: str, what: str) -> None:
        monitor = self._models.get(model)
        if monitor is not None:
            (monitor.on_expired if what == "expired" else monitor.on_unmatched)()

    def monitor(self, model: str, shard: int = 0) -> ModelMonitor | None:
        """The monitor of ``model``, created on first sight (its home is ``shard``);
        ``None`` beyond the cap."""
        monitor = self._models.get(model)
        if monitor is None:
            if self.model_label(model) == OTHER:
                return None
            monitor = self._models[model] = self._new_monitor(model)
            self._home[model] = shard
        return monitor

    def _new_monitor(self, model: str) -> ModelMonitor:
        return ModelMonitor(
            model,
            self._settings.for_model(model),
            self._settings.limits,
            self._references.get(model),
        )

    def process(self, event: Event, timestamp: float, shard: int = 0) -> Status:
        """Apply one valid event with its event time; returns its status.

        ``shard`` is the partition number of its record (topics are co-partitioned).
        """
        status = self.apply([event], [timestamp], [shard])[0]
        monitor = self._models.get(event.model)
        if monitor is not None:
            monitor.flush()
        return status

    def process_many(self, events: Iterable[tuple[Event, float, int]]) -> list[Status]:
        """Apply valid ``(event, event time, shard)`` in order; returns their statuses.

        Joins, counts and signals are applied event by event. The models' drift windows
        and concept detectors take rows and errors in bulk, a column or a detector at a
        time, when enough wait or before a snapshot or state is taken
        (:meth:`ModelMonitor.flush`): what the snapshots and states show is what one
        :meth:`process` per event would give.
        """
        items = list(events)
        return self.apply([i[0] for i in items], [i[1] for i in items], [i[2] for i in items])

    def apply(
        self, events: Sequence[Event], timestamps: Sequence[float], shards: Sequence[int]
    ) -> list[Status]:
        """:meth:`process_many` of events, their event times and shards given apart."""
        # Once per event: lookups are hoisted out of the loop.
        join = self.join
        holds, add_prediction, add_outcome = join.holds, join.add_prediction, join.add_outcome
        counts = join.counts
        models = self._models
        statuses: list[Status] = []
        append = statuses.append
        for event, timestamp, shard in zip(events, timestamps, shards, strict=True):
            model = event.model
            monitor = models.get(model) or self.monitor(model, shard)
            if isinstance(event, Prediction):
                key = model + _SEP + event.id
                if holds(key):
                    counts.duplicate_predictions += 1
                    append("duplicate")
                    continue
                if monitor is not None:
                    payload = monitor.on_prediction(timestamp, event)
                    result = add_prediction(key, timestamp, payload)
                    if isinstance(result, Joined):
                        delay = result.labelled_at - timestamp
                        monitor.on_joined(payload, result.label[1], delay, timestamp)
                append("ok")
            elif isinstance(event, Outcome):
                if monitor is None:
                    append("ok")
                    continue
                label = event.label
                result = add_outcome(model + _SEP + event.id, timestamp, (model, label))
                if isinstance(result, Joined):
                    delay = timestamp - result.predicted_at
                    monitor.on_joined(result.prediction, label, delay, timestamp)
                    append("ok")
                else:
                    append(_OUTCOME_STATUS[result])
            else:
                join.advance(timestamp)
                if monitor is not None:
                    monitor.on_signal(event.signal, event.value)
                if event.id is not None and not holds(model + _SEP + event.id):
                    append("unmatched")
                else:
                    append("ok")
        return statuses

    def end_batch(self, now: float, force: bool = False) -> None:
        """Publish fresh snapshots of the models that changed (at most once a second)."""
        if not force and now - self._last_refresh < SNAPSHOT_INTERVAL_S:
            return
        self._last_refresh = now
        for monitor in self._models.values():
            if monitor.dirty:
                monitor.refresh()
        self._snapshots = tuple(m.snapshot for m in self._models.values())

    def snapshots(self) -> tuple[ModelSnapshot, ...]:
        """The latest published snapshots; safe to read from another thread."""
        return self._snapshots

    # -- checkpoints ----------------------------------------------------------------

    def shards(self) -> set[int]:
        """The shards whose models are here."""
        return set(self._home.values())

    def models_in(self, shard: int) -> list[str]:
        return [name for name, home in self._home.items() if home == shard]

    def shard_state(
        self, shard: int, refs: dict[str, ModelReference] | None = None, wrap: Wrap = dict
    ) -> dict[str, Any]:
        """JSON-safe state of the models whose home is ``shard``, with their join entries
        (``wrap``: see :meth:`JoinStore.entries`)."""
        names = [name for name, home in self._home.items() if home == shard]
        prefixes = tuple(name + _SEP for name in names)
        return {
            "version": _STATE_VERSION,
            "models": [[name, self._models[name].to_state(refs)] for name in names],
            "join": self.join.entries(lambda key: key.startswith(prefixes), wrap),
        }

    def add_shard(
        self, shard: int, state: Mapping[str, Any], refs: Mapping[str, Any] | None = None
    ) -> list[str]:
        """Take over the models of a shard (its partitions were assigned here).

        Models already here, or beyond ``limits.max_models``, are not taken; models whose
        state does not fit the settings start afresh. Returns the models not restored.
        Raises ``ValueError`` (changing nothing) if the state as a whole is unusable.
        """
        try:
            if state.get("version") != _STATE_VERSION:
                raise ValueError(f"shard state version must be {_STATE_VERSION}")
            models, failed = self._restore_models(
                state["models"], refs, lambda name: name not in self._models
            )
            taken = tuple(name + _SEP for name in models)
            join = self.join
            incoming: JoinStore[Payload, tuple[str, Any]] = JoinStore(
                join.ttl_s, join.max_predictions, join.max_outcomes
            )
            incoming.add_entries(
                state["join"], _decode_payload, _decode_label, lambda k: k.startswith(taken)
            )
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed shard state: {exc!r:.200}") from None
        for name, monitor in models.items():
            if self.model_label(name) == OTHER:
                failed.append(name)
                continue
            self._models[name] = monitor
            self._home[name] = shard
        self.join.merge(incoming)
        self.end_batch(0.0, force=True)
        return failed

    def _restore_models(
        self,
        states: list[list[Any]],
        refs: Mapping[str, Any] | None,
        admit: Callable[[str], bool],
    ) -> tuple[dict[str, ModelMonitor], list[str]]:
        """Monitors rebuilt from ``[name, state]`` pairs (of the models ``admit``
        accepts), and the names not restored; one whose state does not fit starts afresh."""
        models: dict[str, ModelMonitor] = {}
        failed = []
        for name, model_state in states:
            if not admit(name):
                failed.append(name)
                continue
            monitor = models[name] = self._new_monitor(name)
            try:
                monitor.load_state(model_state, refs)
            except (KeyError, TypeError, ValueError, IndexError):
                failed.append(name)
                models[name] = self._new_monitor(name)  # afresh
        return models, failed

    def drop_shard(self, shard: int) -> None:
        """Forget the models of a shard and their join entries (its partitions moved)."""
        names = [name for name, home in self._home.items() if home == shard]
        for name in names:
            del self._models[name], self._home[name]
            self.model_label.discard(name)
        prefixes = tuple(name + _SEP for name in names)
        if prefixes:
            self.join.discard(lambda key: key.startswith(prefixes))
        self.end_batch(0.0, force=True)

    def to_state(
        self, refs: dict[str, ModelReference] | None = None, wrap: Wrap = dict
    ) -> dict[str, Any]:
        """JSON-safe state of every model and of the join store (``refs``: see
        :meth:`DriftMonitor.to_state`; ``wrap``: see :meth:`JoinStore.to_state`)."""
        return {
            "version": _STATE_VERSION,
            "model_label": self.model_label.to_state(),
            "models": [[name, m.to_state(refs)] for name, m in self._models.items()],
            "homes": dict(self._home),
            "join": self.join.to_state(wrap),  # payloads are tuples: JSON arrays as they are
        }

    def load_state(
        self, state: Mapping[str, Any], refs: Mapping[str, Any] | None = None
    ) -> list[str]:
        """Take over a state :meth:`to_state` wrote, on a fresh pipeline.

        Returns the models whose state could not be taken over (their settings changed,
        or it does not fit): they start afresh. Raises ``ValueError`` if the state as a
        whole is unusable, leaving this pipeline as it was.
        """
        try:
            return self._load_state(state, refs or {})
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"malformed pipeline state: {exc!r:.200}") from None

    def _load_state(self, state: Mapping[str, Any], refs: Mapping[str, Any]) -> list[str]:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"pipeline state version must be {_STATE_VERSION}")
        join = JoinStore.from_state(state["join"], _decode_payload, _decode_label)
        settings = self._settings.join
        # The bounds and TTL are the current settings', whatever the checkpoint's.
        join.ttl_s, join.max_predictions, join.max_outcomes = (
            settings.ttl_s,
            settings.max_predictions,
            settings.max_outcomes,
        )
        label = LabelCap(self._settings.limits.max_models, preset=self._settings.models)
        label.load_state(state["model_label"])
        models, failed = self._restore_models(
            state["models"], refs, lambda name: label.known(name) is not None
        )
        homes = {str(k): int(v) for k, v in state.get("homes", {}).items()}
        # Nothing failed as a whole: take it all over.
        self.join, self.model_label, self._models = join, label, models
        self._home = {name: homes.get(name, 0) for name in models}
        self._watch_join()
        self.end_batch(0.0, force=True)
        return failed


def _decode_payload(p: list[Any]) -> Payload:
    return (str(p[0]), p[1], str(p[2]), tuple(str(v) for v in p[3]))


def _decode_label(label: list[Any]) -> tuple[str, Any]:
    return (str(label[0]), label[1])
