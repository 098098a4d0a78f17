"""The per-model pipeline: decoded events in, per-model state and snapshots out.

Pure: no Kafka, no clock (the loop passes monotonic time to :meth:`Pipeline.end_batch`).
Used by the daemon's loop and by ``driftline replay`` alike, so both compute the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from monitor.config import Settings
from monitor.events import Event, Outcome, Prediction, Signal
from monitor.join import Joined, JoinResult, JoinStore
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

    def monitor(self, model: str) -> ModelMonitor | None:
        """The monitor of ``model``, created on first sight; ``None`` beyond the cap."""
        monitor = self._models.get(model)
        if monitor is None:
            if self.model_label(model) == OTHER:
                return None
            monitor = self._models[model] = self._new_monitor(model)
        return monitor

    def _new_monitor(self, model: str) -> ModelMonitor:
        return ModelMonitor(
            model,
            self._settings.for_model(model),
            self._settings.limits,
            self._references.get(model),
        )

    def process(self, event: Event, timestamp: float) -> Status:
        """Apply one valid event with its event time; returns its status."""
        monitor = self.monitor(event.model)
        if isinstance(event, Prediction):
            key = event.model + _SEP + event.id
            if self.join.prediction(key) is not None:
                self.join.counts.duplicate_predictions += 1
                return "duplicate"
            if monitor is None:
                return "ok"
            payload = monitor.on_prediction(timestamp, event)
            result = self.join.add_prediction(key, timestamp, payload)
            if isinstance(result, Joined):
                monitor.on_joined(payload, result.label[1], result.delay_s, timestamp)
            return "ok"
        if isinstance(event, Outcome):
            if monitor is None:
                return "ok"
            result = self.join.add_outcome(
                event.model + _SEP + event.id, timestamp, (event.model, event.label)
            )
            if isinstance(result, Joined):
                monitor.on_joined(result.prediction, event.label, result.delay_s, timestamp)
                return "ok"
            if result is JoinResult.DUPLICATE:
                return "duplicate"
            if result is JoinResult.LATE:
                return "late"
            return "ok"
        assert isinstance(event, Signal)
        self.join.advance(timestamp)
        if monitor is not None:
            monitor.on_signal(event.signal, event.value)
        if event.id is not None and self.join.prediction(event.model + _SEP + event.id) is None:
            return "unmatched"
        return "ok"

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

    def to_state(self) -> dict[str, Any]:
        """JSON-safe state of every model and of the join store."""
        return {
            "version": _STATE_VERSION,
            "model_label": self.model_label.to_state(),
            "models": [[name, m.to_state()] for name, m in self._models.items()],
            "join": self.join.to_state(lambda p: [p[0], p[1], p[2], list(p[3])]),
        }

    def load_state(self, state: Mapping[str, Any]) -> list[str]:
        """Take over a state :meth:`to_state` wrote, on a fresh pipeline.

        Returns the models whose state could not be taken over (their settings changed,
        or it does not fit): they start afresh. Raises ``ValueError`` if the state as a
        whole is unusable, leaving this pipeline as it was.
        """
        try:
            return self._load_state(state)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"malformed pipeline state: {exc!r:.200}") from None

    def _load_state(self, state: Mapping[str, Any]) -> list[str]:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"pipeline state version must be {_STATE_VERSION}")
        join = JoinStore.from_state(
            state["join"],
            lambda p: (str(p[0]), p[1], str(p[2]), tuple(p[3])),
            lambda label: (str(label[0]), label[1]),
        )
        settings = self._settings.join
        # The bounds and TTL are the current settings', whatever the checkpoint's.
        join.ttl_s, join.max_predictions, join.max_outcomes = (
            settings.ttl_s,
            settings.max_predictions,
            settings.max_outcomes,
        )
        label = LabelCap(self._settings.limits.max_models, preset=self._settings.models)
        label.load_state(state["model_label"])
        models: dict[str, ModelMonitor] = {}
        failed = []
        for name, model_state in state["models"]:
            if label.known(name) is None:
                failed.append(name)
                continue
            monitor = models[name] = self._new_monitor(name)
            try:
                monitor.load_state(model_state)
            except (KeyError, TypeError, ValueError, IndexError):
                failed.append(name)
                models[name] = self._new_monitor(name)  # afresh
        # Nothing failed as a whole: take it all over.
        self.join, self.model_label, self._models = join, label, models
        self._watch_join()
        self.end_batch(0.0, force=True)
        return failed
