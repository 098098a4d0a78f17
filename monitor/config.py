"""Settings: one frozen object, loaded once at start and passed down.

Sources, lowest precedence first: the YAML file (``yaml.safe_load``), ``DRIFTLINE_*``
environment variables (``DRIFTLINE_KAFKA__GROUP_ID=fraud`` sets ``kafka.group_id``;
values are read as YAML scalars), then command-line flags. Unknown keys are errors,
and every error names the key's dotted path and where the value came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.events import MODEL_NAME_PATTERN

__all__ = ["ENV_PREFIX", "Settings", "load_settings", "masked_dump"]

ENV_PREFIX = "DRIFTLINE_"
# DRIFTLINE_* variables that are not settings (read by the tests, the CLI, ...).
_ENV_NOT_SETTINGS = frozenset({"DRIFTLINE_CONFIG"})
_ENV_NOT_SETTINGS_PREFIXES = ("DRIFTLINE_TEST_",)

Port = Annotated[int, Field(ge=0, le=65535)]
PositiveInt = Annotated[int, Field(ge=1)]
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Topics(_Section):
    predictions: TopicName = "predictions"
    outcomes: TopicName = "outcomes"
    signals: TopicName = "signals"
    dead_letter: TopicName = "driftline-dlq"
    alerts: TopicName = "driftline-alerts"

    @model_validator(mode="after")
    def _distinct(self) -> Topics:
        names = [self.predictions, self.outcomes, self.signals, self.dead_letter, self.alerts]
        if len(set(names)) != len(names):
            raise ValueError("every topic must have its own name")
        return self


class KafkaSettings(_Section):
    # The client library that consumes the event topics: kafka-python (installed with
    # driftline) or confluent-kafka (librdkafka; `pip install 'driftline[confluent]'`).
    client: Literal["kafka-python", "confluent"] = "kafka-python"
    bootstrap_servers: str | list[str] = "localhost:9092"
    group_id: Annotated[str, Field(min_length=1)] = "driftline"
    client_id: Annotated[str, Field(min_length=1)] = "driftline"
    topics: Topics = Topics()
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: Annotated[int, Field(ge=1000)] = 10_000
    heartbeat_interval_ms: Annotated[int, Field(ge=100)] = 3_000
    # Large enough that one poll takes every record the client holds: it asks the
    # broker for more only then, so a smaller batch leaves it waiting for each fetch.
    max_poll_records: PositiveInt = 5_000
    poll_timeout_ms: Annotated[int, Field(ge=1, le=60_000)] = 500
    # Largest record the dead-letter producer sends; bigger ones go without their value.
    dead_letter_max_bytes: PositiveInt = 16 << 20
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: SecretStr | None = None
    ssl_password: SecretStr | None = None
    # Reconnect backoff while the broker is unreachable at start.
    connect_backoff_initial_s: Annotated[float, Field(gt=0)] = 0.5
    connect_backoff_max_s: Annotated[float, Field(gt=0)] = 30.0

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> KafkaSettings:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be at most a third of session_timeout_ms")
        return self

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_not_empty(cls, value: str | list[str]) -> str | list[str]:
        servers = [value] if isinstance(value, str) else value
        if not servers or not all(s.strip() for s in servers):
            raise ValueError("expected HOST:PORT or a non-empty list of them")
        return value


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: Port = 9108
    # /healthz fails when the loop has made no progress for this long.
    stall_after_s: Annotated[float, Field(gt=0)] = 60.0


class StateSettings(_Section):
    dir: Path = Path("./driftline-state")
    # "local": checkpoints in ``dir`` (one instance); "kafka": per partition on the
    # compacted ``topic``, so that state follows partitions between the instances of a
    # group; "none": no checkpoints, offsets committed per batch (a restart then starts
    # every model afresh).
    store: Literal["local", "kafka", "none"] = "local"
    topic: str = "driftline-state"
    # Seconds between checkpoints; offsets are committed after each one.
    checkpoint_interval_s: Annotated[float, Field(gt=0)] = 30.0


class LimitSettings(_Section):
    max_event_bytes: PositiveInt = 1 << 20
    max_models: PositiveInt = 100
    max_features: PositiveInt = 200  # tracked per model; more are counted, not tracked
    max_segment_values: PositiveInt = 10  # per segment key; the rest are __other__
    max_signals: PositiveInt = 20  # signal names per model
    max_versions: PositiveInt = 5  # model versions with their own performance, per model


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class JoinSettings(_Section):
    # How long (event time) a prediction waits for its outcome, and an outcome for its
    # prediction; and how many of each are kept at most.
    ttl_s: Annotated[float, Field(gt=0)] = 3 * 86_400.0
    max_predictions: PositiveInt = 500_000
    max_outcomes: PositiveInt = 100_000


AlertName = Literal[
    "FeatureDrift",
    "PredictionDrift",
    "ConceptDrift",
    "PerformanceDrop",
    "SignalDrop",
    "LabelDelay",
    "InvalidEvents",
    "NoTraffic",
    "ConsumerLag",
]
Seconds = Annotated[float, Field(ge=0)]


class AlertSettings(_Section):
    # Seconds a condition must hold before its alert fires, merged over the defaults:
    # InvalidEvents 60, ConsumerLag 300, others 0 (the drift decisions already require
    # persistence over windows).
    for_s: dict[AlertName, Seconds] = {}
    # Seconds a firing alert's condition must stay clear before it resolves.
    resolve_after_s: Seconds = 300.0
    no_traffic_s: Annotated[float, Field(gt=0)] = 600.0
    label_delay_s: Annotated[float, Field(gt=0)] = 86_400.0
    concept_hold_s: Annotated[float, Field(gt=0)] = 3600.0
    invalid_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.05
    invalid_min: PositiveInt = 10
    invalid_window_s: Annotated[float, Field(gt=0)] = 300.0
    max_lag: PositiveInt = 100_000
    max_instances: PositiveInt = 1000


class PolicySettings(_Section):
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.001
    correction: Literal["holm", "bh", "none"] = "holm"
    min_effect: Annotated[float, Field(ge=0)] = 0.05
    persistence: PositiveInt = 1
    clear_after: PositiveInt = 3
    min_features: PositiveInt = 1


ConceptDetector = Literal["adwin", "page_hinkley", "ddm", "eddm", "kswin", "cusum"]
Task = Literal["binary", "multiclass", "regression"]


class ModelDefaults(_Section):
    reference_size: PositiveInt = 5000
    window_size: PositiveInt = 1000
    window_seconds: Annotated[float, Field(gt=0)] | None = None
    performance_window: PositiveInt = 1000
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    concept_detectors: list[ConceptDetector] = ["adwin"]
    segments: list[Annotated[str, Field(min_length=1, max_length=64)]] = []
    policy: PolicySettings = PolicySettings()
    # pinned: the reference never changes; rolling: stable recent rows replace it.
    reference_mode: Literal["pinned", "rolling"] = "pinned"


class ModelSettings(_Section):
    profile: Path | None = None
    task: Task | None = None
    segments: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None
    reference_size: PositiveInt | None = None
    window_size: PositiveInt | None = None
    window_seconds: Annotated[float, Field(gt=0)] | None = None
    performance_window: PositiveInt | None = None
    threshold: Annotated[float, Field(gt=0, lt=1)] | None = None
    concept_detectors: list[ConceptDetector] | None = None
    policy: PolicySettings | None = None
    reference_mode: Literal["pinned", "rolling"] | None = None
    # Known baseline rate per signal name (signals per prediction); learned otherwise.
    signal_baselines: dict[
        Annotated[str, Field(pattern=MODEL_NAME_PATTERN)], Annotated[float, Field(gt=0)]
    ] = {}


class ModelConfig(_Section):
    """One model's effective settings: its own, else the defaults."""

    profile: Path | None
    task: Task | None
    segments: list[str]
    reference_size: int
    window_size: int
    window_seconds: float | None
    performance_window: int
    threshold: float
    concept_detectors: list[ConceptDetector]
    policy: PolicySettings
    reference_mode: Literal["pinned", "rolling"]
    signal_baselines: dict[str, float]


class Settings(_Section):
    kafka: KafkaSettings = KafkaSettings()
    http: HttpSettings = HttpSettings()
    state: StateSettings = StateSettings()
    limits: LimitSettings = LimitSettings()
    log: LogSettings = LogSettings()
    join: JoinSettings = JoinSettings()
    alerts: AlertSettings = AlertSettings()
    defaults: ModelDefaults = ModelDefaults()
    models: dict[Annotated[str, Field(pattern=MODEL_NAME_PATTERN)], ModelSettings] = {}

    def for_model(self, name: str) -> ModelConfig:
        """The effective settings of model ``name`` (declared or not)."""
        own = self.models.get(name, ModelSettings())
        merged = {
            field: getattr(self.defaults, field)
            if getattr(own, field) is None
            else getattr(own, field)
            for field in ModelDefaults.model_fields
        }
        return ModelConfig(
            profile=own.profile,
            task=own.task,
            signal_baselines=dict(own.signal_baselines),
            **merged,
        )


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from a YAML file, the environment and flag overrides.

    ``overrides`` maps dotted keys (``"http.port"``) to values given on the command
    line, and ``flags`` those keys to the flag names used in error messages.
    Raises :class:`ConfigError` naming the first offending key.
    """
    tree: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    if path is not None:
        _merge(tree, sources, _read_yaml(Path(path)), (), str(path))
    for name, raw in sorted((os.environ if environ is None else environ).items()):
        if not name.startswith(ENV_PREFIX) or _is_not_setting(name):
            continue
        keys = tuple(k.lower() for k in name[len(ENV_PREFIX) :].split("__"))
        _set(tree, sources, keys, _env_value(name, raw), name)
    for dotted, value in (overrides or {}).items():
        flag = (flags or {}).get(dotted, "--" + dotted.replace(".", "-").replace("_", "-"))
        _set(tree, sources, tuple(dotted.split(".")), value, flag)
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets replaced by ``"***"``."""
    return _mask(settings.model_dump(mode="python"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError("config", f"{path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            "config", f"expected a mapping at the top of {path}, got {type(data).__name__}"
        )
    return data


def _merge(
    tree: dict[str, Any],
    sources: dict[tuple[str, ...], str],
    data: Mapping[str, Any],
    prefix: tuple[str, ...],
    source: str,
) -> None:
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            sources[path] = source
            _merge(tree, sources, value, path, source)
        else:
            _set(tree, sources, path, value, source)


def _set(
    tree: dict[str, Any],
    sources: dict[tuple[str, ...], str],
    keys: tuple[str, ...],
    value: Any,
    source: str,
) -> None:
    node = tree
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
            sources[keys[: depth + 1]] = source
        node = child
    node[keys[-1]] = value
    sources[keys] = source


def _env_value(name: str, raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        raise ConfigError(name, "value is not a valid YAML scalar or list") from None


def _is_not_setting(name: str) -> bool:
    return name in _ENV_NOT_SETTINGS or name.startswith(_ENV_NOT_SETTINGS_PREFIXES)


def _config_error(exc: ValidationError, sources: Mapping[tuple[str, ...], str]) -> ConfigError:
    error = exc.errors(include_url=False)[0]
    loc = tuple(str(part) for part in error["loc"])
    # pydantic reports union members as extra path parts (e.g. "str", "list[str]").
    loc = tuple(part for part in loc if "[" not in part and part not in {"str", "int", "float"})
    key = ".".join(loc) or "config"
    source = next((sources[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in sources), None)
    if error["type"] == "extra_forbidden":
        message = f"unknown key; expected one of: {', '.join(_known_keys(loc[:-1]))}"
    else:
        got = error.get("input")
        text = error["msg"].removeprefix("Value error, ").rstrip(".")
        message = f"{text}; got {_short(got)}"
    return ConfigError(key, message, source)


def _known_keys(parent: tuple[str, ...]) -> list[str]:
    if parent[:1] == ("models",):
        return sorted(ModelSettings.model_fields) if len(parent) == 2 else ["(a model name)"]
    model: Any = Settings
    for part in parent:
        field = model.model_fields.get(part)
        model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return ["(see README)"]
    return sorted(model.model_fields)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
