"""driftline: streaming production monitoring for machine-learning models."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from monitor.config import Settings, load_settings
from monitor.errors import CheckpointError, ConfigError, DecodeError, DriftlineError
from monitor.events import EventDecoder, Outcome, Prediction, Signal

try:
    __version__ = version("driftline")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DecodeError",
    "DriftlineError",
    "EventDecoder",
    "Outcome",
    "Prediction",
    "Settings",
    "Signal",
    "__version__",
    "load_settings",
]
