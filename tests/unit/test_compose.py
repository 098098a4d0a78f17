"""compose.yaml, the Dockerfile and .dockerignore agree with the rest of the repository.

No Docker engine is needed: the files are parsed, and every name, port and path they
share with the repository (Prometheus and Grafana configuration, the settings keys,
the daemon's HTTP port, the topics) is checked to match. Only the image's healthcheck
command is run, against the daemon's real HTTP server.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from monitor.config import ENV_PREFIX, Settings, load_settings
from monitor.errors import ConfigError
from monitor.http import HttpServer

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Services built from this repository's Dockerfile.
DRIFTLINE_SERVICES = ("driftline", "simulator")
# service -> {container port: host port}
PUBLISHED_PORTS = {
    "kafka": {29092: 29092},
    "prometheus": {9090: 9090},
    "alertmanager": {9093: 9093},
    "grafana": {3000: 3000},
    "driftline": {9108: 9108},
    "kafka-init": {},
    "simulator": {},
}
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
GRAFANA_DASHBOARDS = "/var/lib/grafana/dashboards"
PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


# --- compose.yaml -------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "compose.yaml must hold a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose().get("services")
    assert isinstance(found, dict) and found, "compose.yaml has no services"
    return found


def service(name: str) -> dict[str, Any]:
    assert name in services(), f"compose.yaml has no service {name!r}; has {sorted(services())}"
    return services()[name]


def interpolate(value: str) -> str:
    """Compose's variable substitution, with every variable unset (defaults apply)."""
    pattern = r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}"
    return re.sub(pattern, lambda m: "$" if m[0] == "$$" else (m[2] or ""), value)


def environment(name: str) -> dict[str, str]:
    raw = service(name).get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: _scalar(value) for key, value in raw.items()}


def _scalar(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return interpolate(str(value))


def command(name: str) -> list[str]:
    raw = service(name).get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


@dataclass(frozen=True)
class Mount:
    service: str
    source: str
    target: str
    bind: bool


def mounts(name: str) -> list[Mount]:
    found = []
    for entry in service(name).get("volumes") or []:
        if isinstance(entry, dict):
            source, target = str(entry.get("source", "")), str(entry["target"])
            bind = entry.get("type") == "bind"
        else:
            source, target = entry.split(":")[:2]
            bind = source.startswith((".", "/", "~"))
        found.append(Mount(name, interpolate(source), target, bind))
    return found


def all_mounts() -> Iterator[Mount]:
    for name in services():
        yield from mounts(name)


def bind_source(name: str, target: str) -> Path:
    matches = [m for m in mounts(name) if m.bind and m.target == target]
    assert matches, f"{name} has no bind mount at {target}"
    return (ROOT / matches[0].source).resolve()


def published_ports(name: str) -> dict[int, int]:
    ports = {}
    for entry in service(name).get("ports") or []:
        if isinstance(entry, dict):
            ports[int(entry["target"])] = int(entry["published"])
        else:
            *host, container = str(entry).split(":")
            ports[int(container.split("/")[0])] = int(host[-1]) if host else 0
    return ports


def healthcheck(name: str) -> dict[str, Any] | None:
    """The service's effective healthcheck, the image's when compose sets none."""
    check = service(name).get("healthcheck")
    if check is None and name in DRIFTLINE_SERVICES:
        return {"test": dockerfile().healthcheck}
    if check is None or check.get("disable"):
        return None
    return dict(check)


def listeners(variable: str) -> dict[str, str]:
    """``NAME://host:port,...`` as {name: "host:port"}."""
    return dict(item.split("://", 1) for item in environment("kafka")[variable].split(","))


def advertised_addresses() -> set[str]:
    return set(listeners("KAFKA_ADVERTISED_LISTENERS").values())


def driftline_environment() -> dict[str, str]:
    """What the daemon's container sees: the image's DRIFTLINE_* ENV, then compose's."""
    image = {k: v for k, v in dockerfile().env.items() if k.startswith(ENV_PREFIX)}
    return image | environment("driftline")


def settings_of(environ: Mapping[str, str]) -> Settings:
    try:
        return load_settings(environ=environ)
    except ConfigError as exc:
        pytest.fail(f"not a valid driftline configuration: {exc}")


def repo_path(relative: str | Path, used_by: str) -> Path:
    path = (ROOT / relative).resolve()
    assert path.exists(), (
        f"{used_by} needs {path.relative_to(ROOT)}, which is not in the repository"
    )
    return path


def yaml_file(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- Dockerfile ----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass(frozen=True)
class Dockerfile:
    stages: list[list[Instruction]]

    @property
    def final(self) -> list[Instruction]:
        return self.stages[-1]

    def last(self, keyword: str) -> str:
        found = [i.args for i in self.final if i.keyword == keyword]
        assert found, f"the Dockerfile's final stage has no {keyword}"
        return found[-1]

    @property
    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.final:
            if instruction.keyword != "ENV":
                continue
            words = shlex.split(instruction.args)
            if "=" not in words[0]:  # legacy form: ENV KEY value
                values[words[0]] = " ".join(words[1:])
            else:
                values.update(word.partition("=")[::2] for word in words)
        return values

    @property
    def exposed(self) -> set[int]:
        ports = " ".join(i.args for i in self.final if i.keyword == "EXPOSE").split()
        return {int(port.split("/")[0]) for port in ports}

    @property
    def healthcheck(self) -> list[str]:
        match = re.fullmatch(r"(?:--\S+\s+)*CMD\s+(.+)", self.last("HEALTHCHECK"), re.DOTALL)
        assert match, "HEALTHCHECK must be of the form [OPTIONS] CMD ..."
        return exec_form(match[1])

    @property
    def user(self) -> str:
        return self.last("USER").split(":")[0]


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"expected the exec (JSON) form, got {args!r}"
    words = json.loads(args)
    assert isinstance(words, list) and all(isinstance(w, str) for w in words)
    return words


@cache
def dockerfile() -> Dockerfile:
    stages: list[list[Instruction]] = []
    logical = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#"):
            continue
        logical += line.rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        if logical.strip():
            keyword, _, args = logical.strip().partition(" ")
            if keyword.upper() == "FROM":
                stages.append([])
            assert stages, "the Dockerfile must start with FROM"
            stages[-1].append(Instruction(keyword.upper(), args.strip()))
        logical = ""
    return Dockerfile(stages)


# --- services and images ---------------------------------------------------------------


def test_every_service_has_an_image_or_a_build() -> None:
    for name, spec in services().items():
        assert "image" in spec or "build" in spec, f"{name} has neither image nor build"


def test_third_party_images_are_pinned_to_a_version() -> None:
    for name, spec in services().items():
        if "build" in spec:
            continue
        image = str(spec["image"])
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"


@pytest.mark.parametrize("name", DRIFTLINE_SERVICES)
def test_driftline_services_build_the_repository_dockerfile(name: str) -> None:
    build = service(name)["build"]
    build = {"context": build} if isinstance(build, str) else build
    assert (ROOT / build["context"]).resolve() == ROOT, f"{name} builds from {build['context']}"
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert service(name)["image"] == service("driftline")["image"], "one image for both"


def test_every_dependency_is_a_service_and_its_condition_can_be_met() -> None:
    for name, spec in services().items():
        raw = spec.get("depends_on") or {}
        needs = {dep: "service_started" for dep in raw} if isinstance(raw, list) else raw
        for dep, how in needs.items():
            condition = how["condition"] if isinstance(how, dict) else how
            assert dep in services(), f"{name} depends on {dep!r}, which is not a service"
            assert condition in DEPENDS_ON_CONDITIONS, f"{name}: unknown condition {condition!r}"
            if condition == "service_healthy":
                assert healthcheck(dep), f"{name} waits for {dep} to be healthy; it has no check"
            if condition == "service_completed_successfully":
                assert services()[dep].get("restart", "no") == "no", f"{dep} must run once"


def test_named_volumes_are_declared_and_used() -> None:
    declared = set(compose().get("volumes") or {})
    used = {m.source for m in all_mounts() if not m.bind}
    assert used == declared, f"used {sorted(used)}, declared {sorted(declared)}"


@pytest.mark.parametrize(
    "mount",
    [m for m in all_mounts() if m.bind],
    ids=lambda m: f"{m.service}:{m.source}",
)
def test_every_bind_mounted_path_exists_in_the_repository(mount: Mount) -> None:
    path = (ROOT / mount.source).resolve()
    assert path.is_relative_to(ROOT), f"{mount.service} mounts {mount.source} from outside"
    repo_path(path.relative_to(ROOT), used_by=f"{mount.service} (mounted at {mount.target})")


@pytest.mark.parametrize("name", sorted(PUBLISHED_PORTS))
def test_ports_are_published_as_documented(name: str) -> None:
    assert published_ports(name) == PUBLISHED_PORTS[name]


def test_every_service_is_expected() -> None:
    assert set(services()) == set(PUBLISHED_PORTS)


# --- Kafka ------------------------------------------------------------------------------


def test_kafka_is_one_kraft_node_reachable_from_containers_and_from_the_host() -> None:
    env = environment("kafka")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    bound = listeners("KAFKA_LISTENERS")
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(bound) <= set(protocols), "every listener needs a security protocol"
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    voter = f"{env['KAFKA_NODE_ID']}@kafka:{bound[controller].rpartition(':')[2]}"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voter
    advertised = listeners("KAFKA_ADVERTISED_LISTENERS")
    assert controller not in advertised
    for name, address in advertised.items():
        host, _, port = address.rpartition(":")
        assert bound[name].rpartition(":")[2] == port, f"{name} is advertised on another port"
        if host == "localhost":  # for the host machine: must be published on that port
            assert published_ports("kafka").get(int(port)) == int(port), f"publish {port}"
        else:
            assert host == "kafka", f"{name} advertises {host}, not the service name"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "CLUSTER_ID: a UUID"
    assert {m.target for m in mounts("kafka")} == {env["KAFKA_LOG_DIRS"]}


def test_topic_creation_waits_for_kafka_and_creates_every_configured_topic() -> None:
    init = service("kafka-init")
    assert init["image"] == service("kafka")["image"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = interpolate(" ".join(command("kafka-init")))
    created = re.search(r"for topic in ([^;]+);", script)
    assert created, "expected `for topic in ...; do kafka-topics.sh --create ...` in kafka-init"
    assert set(created[1].split()) == set(Settings().kafka.topics.model_dump().values())
    assert "--create" in script and "--if-not-exists" in script
    servers = set(re.findall(r"--bootstrap-server\s+(\S+)", script))
    assert servers and servers <= advertised_addresses()


def test_driftline_and_the_simulator_start_once_the_topics_exist() -> None:
    for name in DRIFTLINE_SERVICES:
        condition = service(name)["depends_on"]["kafka-init"]["condition"]
        assert condition == "service_completed_successfully", name


def test_the_simulator_sends_to_the_broker_and_skips_the_daemon_healthcheck() -> None:
    # `driftline simulate` is not implemented yet; only its wiring is checked here.
    args = command("simulator")
    assert args[0] == "simulate"
    assert args[args.index("--bootstrap-servers") + 1] in advertised_addresses()
    assert healthcheck("simulator") is None, "the simulator serves no /healthz"


# --- driftline -----------------------------------------------------------------------------


def test_each_driftline_variable_in_compose_is_a_setting() -> None:
    for name in DRIFTLINE_SERVICES:
        for key, value in environment(name).items():
            if key.startswith(ENV_PREFIX):
                try:
                    load_settings(environ={key: value})
                except ConfigError as exc:
                    pytest.fail(f"{name}: {key}={value!r} is not a driftline setting: {exc}")
    for key, value in dockerfile().env.items():
        if key.startswith(ENV_PREFIX):
            settings_of({key: value})


def test_the_daemon_in_its_container_listens_where_prometheus_scrapes() -> None:
    settings = settings_of(driftline_environment())
    assert "--config" not in command("driftline"), "mount the config file, then check it here"
    assert settings.http.host == "0.0.0.0", "127.0.0.1 would be unreachable from Prometheus"
    assert settings.http.port in published_ports("driftline")
    assert dockerfile().exposed == {settings.http.port}
    assert settings.kafka.bootstrap_servers in advertised_addresses()
    state = [m for m in mounts("driftline") if m.target == str(settings.state.dir)]
    assert state and not state[0].bind, "the state directory should be a named volume"


def test_prometheus_loads_the_repository_config_and_scrapes_the_driftline_service() -> None:
    config_path = bind_source("prometheus", PROMETHEUS_CONFIG)
    config = yaml_file(repo_path(config_path.relative_to(ROOT), used_by="prometheus"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "driftline" in jobs, f"no scrape job 'driftline'; jobs: {sorted(jobs)}"
    targets = [t for sc in jobs["driftline"]["static_configs"] for t in sc["targets"]]
    port = settings_of(driftline_environment()).http.port
    assert targets == [f"driftline:{port}"]
    managers = config["alerting"]["alertmanagers"]
    for target in (t for am in managers for sc in am["static_configs"] for t in sc["targets"]):
        host, _, am_port = target.rpartition(":")
        assert host in services() and int(am_port) in published_ports(host), target


def test_prometheus_rule_files_are_mounted_from_the_repository() -> None:
    config = yaml_file(repo_path("deploy/prometheus/prometheus.yml", used_by="prometheus"))
    rule_mounts = [m for m in mounts("prometheus") if m.bind and m.target != PROMETHEUS_CONFIG]
    for pattern in config.get("rule_files") or []:
        owner = [m for m in rule_mounts if pattern.startswith(m.target + "/")]
        assert owner, f"rule_files {pattern!r} is not under a mounted directory"
        host_dir = repo_path(owner[0].source, used_by="prometheus")
        relative = PurePosixPath(pattern).relative_to(owner[0].target)
        assert list(host_dir.glob(str(relative))), f"{pattern!r} matches no file in {host_dir}"


def test_alertmanager_loads_the_repository_config() -> None:
    path = bind_source("alertmanager", "/etc/alertmanager/alertmanager.yml")
    config = yaml_file(repo_path(path.relative_to(ROOT), used_by="alertmanager"))
    assert "route" in config and "receivers" in config


# --- Grafana -----------------------------------------------------------------------------


def grafana_provisioning(kind: str) -> list[dict[str, Any]]:
    """Every entry of the provisioning YAML files of ``kind`` (datasources, providers)."""
    folder = "datasources" if kind == "datasources" else "dashboards"
    base = repo_path(bind_source("grafana", GRAFANA_PROVISIONING).relative_to(ROOT), "grafana")
    directory = repo_path((base / folder).relative_to(ROOT), used_by="grafana provisioning")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    assert files, f"no provisioning YAML in {directory.relative_to(ROOT)}"
    return [entry for f in files for entry in (yaml_file(f) or {}).get(kind) or []]


def test_grafana_mounts_the_repository_dashboards_and_provisioning() -> None:
    assert bind_source("grafana", GRAFANA_PROVISIONING) == ROOT / "dashboards" / "provisioning"
    assert bind_source("grafana", GRAFANA_DASHBOARDS) == ROOT / "dashboards"
    dashboards = repo_path("dashboards", used_by="grafana")
    assert list(dashboards.glob("*.json")), "no dashboards/*.json to provision"


def test_grafana_dashboard_providers_read_a_mounted_folder_holding_the_dashboards() -> None:
    providers = grafana_provisioning("providers")
    assert providers, "no dashboard provider"
    for provider in providers:
        path = str(provider["options"]["path"]).rstrip("/")
        owner = [m for m in mounts("grafana") if m.bind and (path + "/").startswith(m.target + "/")]
        assert owner, f"provider {provider.get('name')!r} reads {path}, which is not mounted"
        host = (ROOT / owner[0].source / path[len(owner[0].target) :].lstrip("/")).resolve()
        assert list(host.rglob("*.json")), f"provider reads {path}; {host} holds no dashboards"


def test_grafana_queries_the_prometheus_service() -> None:
    sources = [s for s in grafana_provisioning("datasources") if s.get("type") == "prometheus"]
    assert sources, "no Prometheus data source is provisioned"
    for source in sources:
        url = urlsplit(str(source["url"]))
        assert url.hostname == "prometheus" and url.port in published_ports("prometheus"), url
    uids = {s.get("uid") for s in sources}
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        for ref in datasource_refs(json.loads(path.read_text(encoding="utf-8"))):
            uid = str(ref.get("uid", ""))
            if ref.get("type") == "prometheus" and uid and not uid.startswith("$"):
                assert uid in uids, f"{path.name} queries data source {uid!r}; have {uids}"


def datasource_refs(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        ref = node.get("datasource")
        if isinstance(ref, dict):
            yield ref
        for value in node.values():
            yield from datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from datasource_refs(value)


def test_grafana_lets_anonymous_viewers_in_and_takes_the_admin_password_from_the_host() -> None:
    env = environment("grafana")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    raw = service("grafana")["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{\w+:-[^}]+\}", raw), "expected ${VARIABLE:-default}"


# --- Dockerfile and .dockerignore -------------------------------------------------------


def test_the_image_is_python_3_11_slim() -> None:
    for stage in dockerfile().stages:
        assert stage[0].args.split()[0].startswith("python:3.11-slim"), stage[0].args


def test_the_image_runs_as_a_non_root_user_that_owns_the_state_directory() -> None:
    user = dockerfile().user
    assert user.isdigit() and int(user) != 0, f"USER {user}: use a numeric, non-root uid"
    runs = " ".join(i.args for i in dockerfile().final if i.keyword == "RUN")
    assert f"--uid {user}" in runs, "create the user with that uid"
    state_dir = dockerfile().env["DRIFTLINE_STATE__DIR"]
    assert re.search(rf"chown \S*{user}\S* {re.escape(state_dir)}\b", runs), "chown the state"


def test_the_entrypoint_is_the_driftline_console_script_running_the_daemon() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"^driftline\s*=", pyproject, re.MULTILINE), "no `driftline` script"
    assert exec_form(dockerfile().last("ENTRYPOINT")) == ["driftline"]
    assert exec_form(dockerfile().last("CMD")) == ["run"]


def test_the_healthcheck_gets_healthz_on_the_exposed_port_without_curl() -> None:
    check = dockerfile().healthcheck
    assert check[0] in {"python", "python3"}, "the slim image has no curl or wget"
    url = urlsplit(healthcheck_url(check))
    assert url.hostname in {"127.0.0.1", "localhost"} and url.path == "/healthz"
    assert dockerfile().exposed == {url.port}
    assert dockerfile().env["DRIFTLINE_HTTP__PORT"] == str(url.port)


@pytest.mark.parametrize(("healthy", "exit_code"), [(True, 0), (False, 1)])
def test_the_healthcheck_passes_only_while_the_daemon_reports_healthy(
    healthy: bool, exit_code: int
) -> None:
    check = dockerfile().healthcheck
    url = healthcheck_url(check)
    server = HttpServer("127.0.0.1", 0, lambda: (b"", "text/plain"), lambda: healthy, lambda: True)
    server.start()
    try:
        here = url.replace(f":{urlsplit(url).port}/", f":{server.port}/")
        probe = [sys.executable, *(arg.replace(url, here) for arg in check[1:])]
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    finally:
        server.stop()
    assert done.returncode == exit_code, done.stderr.decode()


def healthcheck_url(check: list[str]) -> str:
    urls = re.findall(r"https?://[^\s'\"]+", " ".join(check))
    assert len(urls) == 1, f"expected one URL in the healthcheck, got {urls}"
    return str(urls[0])


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip().strip("/") for line in lines if line.strip() and line[0] != "#"]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or a parent wins; ``!`` re-includes."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for pattern in patterns:
        regex = glob_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = not pattern.startswith("!")
    return verdict


def glob_regex(glob: str) -> re.Pattern[str]:
    """Go's filepath.Match syntax plus ``**`` (any number of directories)."""
    tokens = re.findall(r"\*\*/|\*\*|\*|\?|\[[^\]]*\]|.", glob)
    special = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile(
        "".join(special.get(t, t if t.startswith("[") else re.escape(t)) for t in tokens)
    )


def test_everything_the_build_copies_exists_and_is_not_docker_ignored() -> None:
    patterns = dockerignore_patterns()
    for instruction in (i for stage in dockerfile().stages for i in stage):
        if instruction.keyword != "COPY" or "--from=" in instruction.args:
            continue
        *sources, _ = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
        for source in sources:
            repo_path(source, used_by=f"COPY {instruction.args}")
            assert not ignored(source, patterns), f".dockerignore drops {source}, which is copied"
    for clutter in (".git", ".venv", "tests", "driftline-state", "monitor/__pycache__/x.pyc"):
        assert ignored(clutter, patterns), f".dockerignore should drop {clutter}"


def test_the_installed_distribution_holds_every_package_the_image_copies() -> None:
    # The image runs a regular (not editable) install: a subpackage missing from the
    # distribution is an ImportError at start, though the tests pass from the checkout.
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = config["tool"]["setuptools"]["packages"]
    copied = [
        w.rstrip("/")
        for i in dockerfile().stages[0]
        if i.keyword == "COPY"
        for w in shlex.split(i.args)[:-1]
        if (ROOT / w).is_dir()
    ]
    code = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in copied
        for init in (ROOT / top).rglob("__init__.py")
    }
    if isinstance(packages, dict):  # packages.find: include globs
        include = packages.get("find", {}).get("include", ["*"])
        installed = {p for p in code if any(fnmatch(p, g) for g in include)}
    else:
        installed = set(packages)
    missing = sorted(code - installed)
    assert not missing, f"pyproject.toml [tool.setuptools] packages lacks {missing}"


def test_docker_compose_accepts_the_file() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no docker compose client here")
    done = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


def compose_cli() -> list[str] | None:
    """``docker compose`` (plugin) or ``docker-compose``; neither needs an engine for config."""
    docker = shutil.which("docker")
    if docker is not None:
        version = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if version.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None
