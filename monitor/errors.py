"""Errors raised by the driftline daemon.

The hierarchy::

    DriftlineError
    ├── ConfigError        a setting is wrong; the daemon refuses to start
    ├── DecodeError        an event cannot be used; it goes to the dead-letter topic
    └── CheckpointError    saved state cannot be read or written

Bad data is never a crash: :class:`DecodeError` is caught in exactly one place
(:func:`monitor.service.Service.process_batch`) and turned into a dead-letter record.
Anything else that escapes is a programming error and is allowed to crash loudly.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "DecodeError", "DriftlineError"]


class DriftlineError(Exception):
    """Root of every error driftline raises on purpose."""


class ConfigError(DriftlineError):
    """A setting is unknown, mistyped or out of range.

    ``key`` is the dotted path of the offending setting (``kafka.group_id``) and
    ``source`` where it came from (a file name, an environment variable or a flag).
    """

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        self.key = key
        self.message = message
        self.source = source
        where = f" (from {source})" if source else ""
        super().__init__(f"{key}: {message}{where}")


class DecodeError(DriftlineError):
    """An event's bytes are not a valid event.

    ``reason`` is a short code from :data:`monitor.events.REASONS` — safe to use as a
    metric label — and ``detail`` a human-readable explanation naming the field.
    ``model`` is the event's model name when it is present and valid, so that a
    producer's bad events are attributed to its model.
    """

    def __init__(self, reason: str, detail: str, model: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.model = model  # a valid model name, when one could be read from the event
        super().__init__(f"{reason}: {detail}")


class CheckpointError(DriftlineError):
    """Saved state is missing, corrupt or from an incompatible version."""
