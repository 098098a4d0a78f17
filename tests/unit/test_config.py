"""Settings: file, then environment, then flags; every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Settings, load_settings, masked_dump
from monitor.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftline.yaml"
    path.write_text(text)
    return path


def test_defaults_match_the_design() -> None:
    settings = load_settings(environ={})
    assert settings.kafka.bootstrap_servers == "localhost:9092"
    assert settings.kafka.group_id == "driftline"
    assert settings.kafka.auto_offset_reset == "earliest"
    assert settings.kafka.topics.dead_letter == "driftline-dlq"
    assert settings.kafka.topics.alerts == "driftline-alerts"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 9108)
    assert settings.defaults.reference_size == 5000
    assert settings.defaults.window_size == 1000
    assert settings.limits.max_event_bytes == 1 << 20


def test_environment_overrides_the_file_and_flags_override_both(tmp_path: Path) -> None:
    path = write(tmp_path, "http:\n  port: 9000\n  host: 0.0.0.0\nkafka:\n  group_id: from-file\n")
    settings = load_settings(
        path,
        environ={"DRIFTLINE_HTTP__PORT": "9100", "DRIFTLINE_KAFKA__GROUP_ID": "from-env"},
        overrides={"http.port": 9200},
    )
    assert settings.http.port == 9200
    assert settings.http.host == "0.0.0.0"
    assert settings.kafka.group_id == "from-env"


def test_the_design_example_config_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
kafka:
  bootstrap_servers: localhost:9092
  group_id: driftline
  topics: {predictions: predictions, outcomes: outcomes, signals: signals,
           dead_letter: driftline-dlq, alerts: driftline-alerts}
http: {host: 127.0.0.1, port: 9108}
state: {dir: ./driftline-state}
defaults:
  reference_size: 5000
  window_size: 1000
models:
  churn: {profile: profiles/churn.json, task: binary, segments: [region]}
""",
    )
    settings = load_settings(path, environ={})
    assert settings.models["churn"].task == "binary"
    assert settings.models["churn"].segments == ["region"]


@pytest.mark.parametrize(
    ("text", "env", "key", "source"),
    [
        ("kafka:\n  bootstrap_server: x:1\n", {}, "kafka.bootstrap_server", "driftline.yaml"),
        ("http:\n  port: abc\n", {}, "http.port", "driftline.yaml"),
        ("", {"DRIFTLINE_HTTP__PORT": "70000"}, "http.port", "DRIFTLINE_HTTP__PORT"),
        (
            "",
            {"DRIFTLINE_KAFKA__AUTO_OFFSET_RESET": "none"},
            "kafka.auto_offset_reset",
            "DRIFTLINE_KAFKA__AUTO_OFFSET_RESET",
        ),
        ("models:\n  churn: {task: clustering}\n", {}, "models.churn.task", "driftline.yaml"),
        ("models:\n  churn: {taks: binary}\n", {}, "models.churn.taks", "driftline.yaml"),
        (
            "kafka:\n  topics: {predictions: same, outcomes: same}\n",
            {},
            "kafka.topics",
            "driftline.yaml",
        ),
        (
            "kafka:\n  session_timeout_ms: 6000\n  heartbeat_interval_ms: 3000\n",
            {},
            "kafka",
            "driftline.yaml",
        ),
        ("limits:\n  max_models: 0\n", {}, "limits.max_models", "driftline.yaml"),
        ("surprise: 1\n", {}, "surprise", "driftline.yaml"),
    ],
)
def test_a_wrong_setting_names_its_key_and_source(
    tmp_path: Path, text: str, env: dict[str, str], key: str, source: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env)
    assert info.value.key == key
    assert info.value.source is not None and info.value.source.endswith(source)
    assert "\n" not in str(info.value)


def test_an_unknown_key_lists_the_keys_that_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key; expected one of: host, port"):
        load_settings(write(tmp_path, "http: {prot: 1}\n"), environ={})


def test_a_flag_error_names_the_flag() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, overrides={"http.port": -1}, flags={"http.port": "--http-port"})
    assert (info.value.key, info.value.source) == ("http.port", "--http-port")


def test_yaml_that_is_not_a_mapping_or_not_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"), environ={})
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        load_settings(write(tmp_path, "http: {port: [\n"), environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", environ={})


def test_yaml_tags_that_build_python_objects_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "http: !!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path, environ={})


def test_variables_that_are_not_settings_are_left_alone() -> None:
    settings = load_settings(
        environ={"DRIFTLINE_TEST_BOOTSTRAP": "x:1", "DRIFTLINE_CONFIG": "f", "PATH": "/bin"}
    )
    assert settings == Settings()


def test_secrets_are_masked_in_the_dump_but_usable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: PLAIN\n"
        "  sasl_username: svc\n  sasl_password: hunter2\n  ssl_keyfile: /keys/client.key\n",
    )
    settings = load_settings(path, environ={})
    dump = masked_dump(settings)
    assert dump["kafka"]["sasl_password"] == "***"
    assert dump["kafka"]["ssl_keyfile"] == "***"
    assert dump["kafka"]["sasl_username"] == "svc"
    assert "hunter2" not in repr(dump) and "hunter2" not in repr(settings)
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "hunter2"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.http.port = 1  # type: ignore[misc,unused-ignore]


def test_the_kafka_client_is_kafka_python_unless_set_to_confluent() -> None:
    assert load_settings(environ={}).kafka.client == "kafka-python"
    settings = load_settings(environ={"DRIFTLINE_KAFKA__CLIENT": "confluent"})
    assert settings.kafka.client == "confluent"


def test_an_unknown_kafka_client_names_the_key_and_where_it_came_from() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"DRIFTLINE_KAFKA__CLIENT": "librdkafka"})
    assert (info.value.key, info.value.source) == ("kafka.client", "DRIFTLINE_KAFKA__CLIENT")
    assert "'kafka-python' or 'confluent'" in info.value.message


def test_the_confluent_client_without_its_package_fails_the_start_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    from contextlib import ExitStack

    from monitor.daemon import build_daemon
    from monitor.errors import DriftlineError

    # As if confluent-kafka were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    monkeypatch.delitem(sys.modules, "monitor.confluent_io", raising=False)
    settings = load_settings(environ={"DRIFTLINE_KAFKA__CLIENT": "confluent"})
    with ExitStack() as stack, pytest.raises(DriftlineError) as info:
        build_daemon(settings, stack)
    message = str(info.value)
    assert message.startswith("kafka.client is confluent")
    assert "pip install 'driftline[confluent]'" in message


def test_security_settings_reach_librdkafka_under_its_names() -> None:
    from monitor.confluent_io import client_config

    settings = load_settings(
        environ={
            "DRIFTLINE_KAFKA__CLIENT": "confluent",
            "DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS": "[a:9092, b:9093]",
            "DRIFTLINE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "DRIFTLINE_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "DRIFTLINE_KAFKA__SASL_USERNAME": "svc",
            "DRIFTLINE_KAFKA__SASL_PASSWORD": "hunter2",
            "DRIFTLINE_KAFKA__SSL_CAFILE": "/ca.pem",
            "DRIFTLINE_KAFKA__SSL_CERTFILE": "/client.pem",
            "DRIFTLINE_KAFKA__SSL_KEYFILE": "/client.key",
            "DRIFTLINE_KAFKA__SSL_PASSWORD": "keypass",
        }
    )
    config = client_config(settings.kafka)
    config.pop("logger")
    assert config == {
        "bootstrap.servers": "a:9092,b:9093",
        "client.id": "driftline",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "hunter2",
        "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/client.pem",
        "ssl.key.location": "/client.key",
        "ssl.key.password": "keypass",
    }
    plain = client_config(load_settings(environ={}).kafka)
    assert not any(key.startswith(("sasl.", "ssl.")) for key in plain)
