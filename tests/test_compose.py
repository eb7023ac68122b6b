"""docker-compose.yml, Dockerfile and deploy/config.toml are wired to the real code.

There is no Docker engine on the development machine, so the stack is checked by
parsing: the Kafka service follows the apache/kafka image's documented KRaft
settings, every crisiswatch service reaches the broker at the address Kafka
advertises on its internal listener, kafka-init creates the topics the code uses,
the commands are real CLI subcommands, and the mounted configuration loads with
the environment the services get.
"""

from __future__ import annotations

from dataclasses import replace

import argparse
import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from connectors.kafka import KafkaSettings
from connectors.registry import build_source
from listener.cli import parser
from listener.config import Config, load

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CONFIG_TARGET = "/etc/crisiswatch/config.toml"
SERVICES = ("kafka", "kafka-init", "ingest", "listener", "notify", "jupyter")

# What the operator sets in .env; everything else must come from defaults in the file.
COMPOSE_ENV = {"JUPYTER_TOKEN": "test-token"}

_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                  r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


class InterpolationError(ValueError):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        current = env.get(name)
        unset_or_empty = not current if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if unset_or_empty else str(current)
        if op in (":?", "?"):
            if unset_or_empty:
                raise InterpolationError(f"{name}: {arg}")
            return str(current)
        return current or ""

    return _VAR.sub(one, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    assert COMPOSE.is_file(), "docker-compose.yml is missing"
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return interpolate(raw["services"], COMPOSE_ENV)


def env_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as strings (mapping or KEY=VALUE list syntax)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in env.items()}


class Mount(NamedTuple):
    source: str
    target: str
    read_only: bool


def mounts(service: Mapping[str, Any]) -> list[Mount]:
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            out.append(Mount(str(v.get("source", "")), v["target"], bool(v.get("read_only", False))))
        else:
            parts = v.split(":")
            mode = parts[2] if len(parts) > 2 else "rw"
            out.append(Mount(parts[0], parts[1], "ro" in mode.split(",")))
    return out


def is_bind(m: Mount) -> bool:
    return m.source.startswith((".", "/", "~"))


def command_argv(service: Mapping[str, Any]) -> list[str]:
    cmd = service.get("command")
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd or []]


def crisiswatch_services(services: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services built from this repository's Dockerfile."""
    out = {}
    for name, s in services.items():
        build = s.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        if (ROOT / context / dockerfile).resolve() == DOCKERFILE.resolve():
            out[name] = s
    return out


def listener_map(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' -> {NAME: (host, port)}."""
    out = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


@pytest.fixture(scope="module")
def kafka_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return env_of(services["kafka"])


@pytest.fixture(scope="module")
def internal_address(kafka_env: dict[str, str]) -> str:
    """What Kafka advertises on its inter-broker (internal) listener: the other services' bootstrap."""
    advertised = listener_map(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    host, port = advertised[kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    return f"{host}:{port}"


@pytest.fixture(scope="module")
def deploy_config(services: dict[str, dict[str, Any]]) -> Config:
    """deploy/config.toml as the listener service sees it."""
    return load_service_config(services, "listener")


def load_service_config(services: Mapping[str, dict[str, Any]], name: str) -> Config:
    service = services[name]
    [config_mount] = [m for m in mounts(service) if m.target == CONFIG_TARGET]
    assert is_bind(config_mount) and config_mount.read_only, f"{name}: mount the config file read-only"
    path = (ROOT / config_mount.source).resolve()
    assert path.is_file(), f"{name} mounts {config_mount.source}, which does not exist"
    return load(path, env=env_of(service))


# --- Dockerfile ---------------------------------------------------------------------------------


class Stage(NamedTuple):
    name: str
    base: str
    instructions: list[tuple[str, str]]


def dockerfile_stages() -> list[Stage]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("#") and not pending:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        if not line.strip() or line.strip().startswith("#"):
            continue
        op, _, rest = line.strip().partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key] = default
        elif op == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), ""), words[0])
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, base, []))
        elif stages:
            stages[-1].instructions.append((op, rest))
    return stages


def stage_chain(stages: list[Stage], name: str) -> list[Stage]:
    """A stage and the stages it is built FROM, base first."""
    by_name = {s.name: s for s in stages}
    chain = [by_name[name]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def last(chain: list[Stage], op: str) -> str | None:
    found = None
    for stage in chain:
        for o, rest in stage.instructions:
            if o == op:
                found = rest
    return found


def test_dockerfile_entrypoint_is_crisiswatch_and_runs_as_non_root() -> None:
    assert DOCKERFILE.is_file(), "Dockerfile is missing"
    stages = dockerfile_stages()
    default = stages[-1]  # `docker build .` builds the last stage
    chain = stage_chain(stages, default.name)
    assert json.loads(last(chain, "ENTRYPOINT") or "null") == ["crisiswatch"]
    assert chain[0].base == "python:3.11-slim"
    user = last(chain, "USER")
    assert user and user.split(":")[0] not in ("root", "0"), "the image must not run as root"
    # the console script comes from installing the package (with the notebooks extra)
    installs = [rest for s in stages for op, rest in s.instructions if op == "RUN" and "pip install" in rest]
    assert any(re.search(r"pip install --no-cache-dir [\"']?\.\[notebooks\][\"']?", r) for r in installs), installs


def test_services_build_existing_dockerfile_targets(services: dict[str, dict[str, Any]]) -> None:
    stages = {s.name for s in dockerfile_stages()}
    built = crisiswatch_services(services)
    assert set(built) == {"ingest", "listener", "notify", "jupyter"}
    for name, s in built.items():
        target = s["build"].get("target") if isinstance(s["build"], dict) else None
        assert target is None or target in stages, f"{name}: build target {target!r} is not a Dockerfile stage"
    for name in ("ingest", "listener", "notify"):
        target = services[name]["build"].get("target") or dockerfile_stages()[-1].name
        chain = stage_chain(dockerfile_stages(), target)
        assert json.loads(last(chain, "ENTRYPOINT") or "null") == ["crisiswatch"], name


# --- Kafka ----------------------------------------------------------------------------------------


def test_all_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(SERVICES) <= set(services)


def test_kafka_is_the_official_image_in_kraft_combined_mode(services: dict[str, dict[str, Any]],
                                                            kafka_env: dict[str, str]) -> None:
    image = services["kafka"]["image"]
    repo, _, tag = image.partition(":")
    assert repo == "apache/kafka"
    assert re.fullmatch(r"3\.9\.\d+|4\.\d+\.\d+", tag), f"pin a 3.9.x or 4.x tag, not {tag!r}"
    assert services["kafka-init"]["image"] == image, "kafka-init must use the broker's image (same tools)"

    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = kafka_env["KAFKA_NODE_ID"]
    listeners = listener_map(kafka_env["KAFKA_LISTENERS"])
    advertised = listener_map(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(p.split(":") for p in kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controllers = kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    inter_broker = kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]

    assert set(listeners) | set(advertised) | set(controllers) <= set(protocols)
    assert set(advertised) <= set(listeners)
    for name in controllers:
        assert name in listeners and name not in advertised, "the controller listener is never advertised"
    assert inter_broker in advertised and inter_broker not in controllers
    # the single voter is this node, on its controller listener
    controller_port = listeners[controllers[0]][1]
    hostnames = {"kafka", services["kafka"].get("hostname", "kafka")}
    assert kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"] in {f"{node_id}@{h}:{controller_port}" for h in hostnames}
    for name, (_, port) in advertised.items():
        assert listeners[name][1] == port, f"listener {name} is advertised on another port than it binds"

    # one node: internal topics with replication factor 1, no rebalance delay
    assert kafka_env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kafka_env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert kafka_env.get("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1") == "1"
    assert kafka_env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert kafka_env.get("CLUSTER_ID"), "a fresh data volume is formatted with CLUSTER_ID"


def test_kafka_keeps_data_in_a_volume_and_has_a_healthcheck(raw: dict[str, Any], services: dict[str, dict[str, Any]],
                                                            kafka_env: dict[str, str]) -> None:
    log_dir = kafka_env["KAFKA_LOG_DIRS"]
    data = [m for m in mounts(services["kafka"]) if m.target == log_dir]
    assert data and not is_bind(data[0]) and data[0].source in (raw.get("volumes") or {})
    test = services["kafka"]["healthcheck"]["test"]
    argv = test[1:] if isinstance(test, list) else ["CMD-SHELL", test]
    joined = " ".join(argv)
    assert "kafka-broker-api-versions.sh" in joined or "kafka-topics.sh" in joined
    port = listener_map(kafka_env["KAFKA_LISTENERS"])[kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]][1]
    assert f"--bootstrap-server localhost:{port}" in joined


def test_internal_listener_is_kafka_9092(internal_address: str) -> None:
    assert internal_address == "kafka:9092"


def test_external_listener_is_published_on_loopback_only(services: dict[str, dict[str, Any]],
                                                         kafka_env: dict[str, str]) -> None:
    advertised = listener_map(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    external = {n: a for n, a in advertised.items() if n != kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]}
    published = [str(p) for p in services["kafka"].get("ports") or []]
    for name, (host, port) in external.items():
        assert host == "localhost", f"{name} is for clients on the Docker host"
        assert f"127.0.0.1:{port}:{listener_map(kafka_env['KAFKA_LISTENERS'])[name][1]}" in published
    assert len(published) == len(external), "publish only the host-facing listener(s)"


# --- topics ---------------------------------------------------------------------------------------


def topic_commands(services: Mapping[str, dict[str, Any]]) -> list[list[str]]:
    """Every kafka-topics.sh invocation in kafka-init's command, as argv lists."""
    text = "\n".join(command_argv(services["kafka-init"]))
    return [shlex.split(line.strip()) for line in text.splitlines() if "kafka-topics.sh" in line]


def option(argv: list[str], name: str) -> str | None:
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def test_kafka_init_creates_every_topic_the_code_uses(services: dict[str, dict[str, Any]], internal_address: str,
                                                      deploy_config: Config) -> None:
    defaults = KafkaSettings()
    needed = {defaults.mentions_topic, defaults.alerts_topic, defaults.dlq_topic, defaults.state_topic,
              deploy_config.kafka.mentions_topic, deploy_config.kafka.alerts_topic, deploy_config.kafka.dlq_topic,
              deploy_config.kafka.state_topic}
    created = {}
    for argv in topic_commands(services):
        if "--create" not in argv:
            continue
        assert "--if-not-exists" in argv, "kafka-init must be re-runnable"
        assert option(argv, "--bootstrap-server") == internal_address
        assert option(argv, "--replication-factor") == "1", "a single broker holds one replica"
        created[option(argv, "--topic")] = int(option(argv, "--partitions") or 0)
    assert needed <= set(created), f"kafka-init does not create {sorted(needed - set(created))}"
    assert all(p >= 1 for p in created.values())
    # the default partition count of "mentions" is the most listeners that can share the work
    assert created[defaults.mentions_topic] == 6
    # the state topic is partitioned like the input (listener/state.py) and compacted
    assert created[defaults.state_topic] == created[defaults.mentions_topic]
    [state_cmd] = [a for a in topic_commands(services) if option(a, "--topic") == defaults.state_topic]
    assert option(state_cmd, "--config") == "cleanup.policy=compact"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["kafka-init"].get("restart", "no") == "no"


def test_mentions_partitions_come_from_the_environment(raw: dict[str, Any]) -> None:
    services = interpolate(raw["services"], {**COMPOSE_ENV, "MENTIONS_PARTITIONS": "12"})
    created = {option(a, "--topic"): option(a, "--partitions") for a in topic_commands(services) if "--create" in a}
    assert created[KafkaSettings().mentions_topic] == "12" == created[KafkaSettings().state_topic]


# --- crisiswatch services -------------------------------------------------------------------------


def test_every_crisiswatch_service_bootstraps_from_the_internal_listener(
        services: dict[str, dict[str, Any]], internal_address: str) -> None:
    for name, service in crisiswatch_services(services).items():
        assert env_of(service).get("CRISISWATCH__KAFKA__BOOTSTRAP_SERVERS") == internal_address, name
        config = load_service_config(services, name)
        assert config.kafka.bootstrap_servers == (internal_address,), name
        assert not config.kafka.embedded


def subcommands() -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize(("service", "subcommand"), [("ingest", "ingest"), ("listener", "listen"),
                                                     ("notify", "notify")])
def test_commands_are_real_cli_subcommands(services: dict[str, dict[str, Any]], service: str,
                                           subcommand: str) -> None:
    argv = command_argv(services[service])
    if argv and argv[0] == "crisiswatch":
        argv = argv[1:]
    args = parser().parse_args(argv)  # exits (SystemExit) on an unknown command or option
    assert args.command in subcommands()
    assert args.command == subcommand
    assert args.config == CONFIG_TARGET


def test_ingest_and_listener_wait_for_the_topics(services: dict[str, dict[str, Any]]) -> None:
    for name in ("ingest", "listener", "notify"):
        assert services[name]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully", name


def test_listener_is_scalable_and_keeps_its_history_in_a_named_volume(
        raw: dict[str, Any], services: dict[str, dict[str, Any]], deploy_config: Config) -> None:
    listener = services["listener"]
    assert "container_name" not in listener
    assert not listener.get("ports"), "a fixed host port would stop `--scale listener=3`"
    assert listener.get("restart") == "unless-stopped"
    history = deploy_config.listener.history_path
    assert history == "/data/alerts.jsonl"
    [data] = [m for m in mounts(listener) if m.target == str(Path(history).parent)]
    assert not is_bind(data) and not data.read_only and data.source in (raw.get("volumes") or {})


def test_notify_is_opt_in_keeps_its_outbox_in_the_volume_and_publishes_its_api_on_loopback(
        raw: dict[str, Any], services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    from listener.api import parse_listen
    from listener.notify import build_oncall

    notify = services["notify"]
    assert notify.get("profiles") == ["notify"], "exactly one notify: not part of a plain `up`, never scaled"
    config = load_service_config(services, "notify")
    outbox_dir = str(Path(config.outbox.path).parent)
    [data] = [m for m in mounts(notify) if m.target == outbox_dir]
    [listener_data] = [m for m in mounts(services["listener"]) if m.target == outbox_dir]
    assert not is_bind(data) and not data.read_only and data.source == listener_data.source
    _, port = parse_listen(config.oncall.http_listen)
    assert [str(p) for p in notify.get("ports") or []] == [f"127.0.0.1:{port}:{port}"]
    env = env_of(notify)
    assert config.oncall.token_env in env, "the API token must be passed through to the container"
    # with the secrets the operator puts in .env, the configured receivers, routes and outbox build
    secrets = {name: "https://hooks.slack.com/services/T0/B0/x" if "URL" in name else "t" * 32 for name in env}
    local = replace(config, outbox=replace(config.outbox, path=str(tmp_path / "outbox.db")))
    stack = build_oncall(local, env={**env, **secrets})
    assert stack is not None and stack.engine.router.routes
    stack.outbox.close()


def test_listener_serves_metrics_and_its_healthcheck_asks_livez(services: dict[str, dict[str, Any]]) -> None:
    """/livez, not /healthz: a spare replica (more replicas than partitions) or one waiting for Kafka is alive,
    not unhealthy — /healthz (live *and* ready) would mark it unhealthy forever."""
    from listener.api import parse_listen

    config = load_service_config(services, "listener")
    _, port = parse_listen(config.listener.metrics_listen, "listener.metrics_listen")
    check = " ".join(services["listener"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/livez" in check


def test_notify_serves_metrics_without_the_api_token_and_its_healthcheck_asks_livez(
        services: dict[str, dict[str, Any]]) -> None:
    from listener.api import parse_listen

    config = load_service_config(services, "notify")
    assert config.oncall.metrics_listen, "notify's /metrics for Prometheus: [oncall] metrics_listen"
    _, port = parse_listen(config.oncall.metrics_listen, "oncall.metrics_listen")
    assert port != parse_listen(config.oncall.http_listen)[1]
    check = " ".join(services["notify"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/livez" in check
    published = [str(p) for p in services["notify"].get("ports") or []]
    assert not any(f":{port}" in p for p in published), "metrics stay on the compose network, like the listener's"


def test_ingest_reads_its_sources_from_a_mount(services: dict[str, dict[str, Any]]) -> None:
    config = load_service_config(services, "ingest")
    assert config.sources, "ingest refuses to start without [[sources]]"
    ingest_mounts = mounts(services["ingest"])
    for table in config.sources:
        # a file source's path exists only inside the container, so read it from the table
        if table.get("type") == "file":
            path = str(table["path"])
            assert any(path.startswith(m.target.rstrip("/") + "/") for m in ingest_mounts), \
                f"{path} is not inside any volume of the ingest service"
    assert any(is_bind(m) and m.source == "./deploy/in" and m.target == "/data/in" for m in ingest_mounts)


def test_commented_simulator_example_builds() -> None:
    """The commented-out [[sources]] example in deploy/config.toml works when uncommented."""
    text = (ROOT / "deploy" / "config.toml").read_text(encoding="utf-8")
    block = re.search(r"^# \[\[sources\]\]\n((?:# \w+ = .*\n)+)", text, re.M)
    assert block, "the commented simulator example is missing"
    import tomllib

    table = tomllib.loads("\n".join(line[2:] for line in block.group(1).splitlines()))
    assert table["type"] == "simulator" and isinstance(table["seed"], int)
    assert build_source(table).name


def test_jupyter_serves_notebooks_with_the_history_read_only(
        raw: dict[str, Any], services: dict[str, dict[str, Any]], deploy_config: Config) -> None:
    jupyter = services["jupyter"]
    assert [str(p) for p in jupyter.get("ports") or []] == ["127.0.0.1:8888:8888"]
    ms = mounts(jupyter)
    assert any(is_bind(m) and m.source == "./notebooks" and m.target == "/work/notebooks" for m in ms)
    assert (ROOT / "notebooks").is_dir()
    history_dir = str(Path(deploy_config.listener.history_path).parent)
    [listener_data] = [m for m in mounts(services["listener"]) if m.target == history_dir]
    [data] = [m for m in ms if m.target == history_dir]
    assert data.source == listener_data.source and data.read_only
    assert env_of(jupyter)["CRISISWATCH_ALERTS"] == deploy_config.listener.history_path
    assert "--ServerApp.root_dir=/work/notebooks" in command_argv(jupyter)


def test_jupyter_token_is_required(raw: dict[str, Any]) -> None:
    assert raw["services"]["jupyter"]["environment"]["JUPYTER_TOKEN"].startswith("${JUPYTER_TOKEN:?")
    with pytest.raises(InterpolationError, match="JUPYTER_TOKEN"):
        interpolate(raw["services"], {})
    assert env_of(interpolate(raw["services"], COMPOSE_ENV)["jupyter"])["JUPYTER_TOKEN"] == "test-token"


def test_named_volumes_are_declared(raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(raw.get("volumes") or {})
    for name, service in services.items():
        for m in mounts(service):
            if not is_bind(m):
                assert m.source in declared, f"{name} uses undeclared volume {m.source!r}"
            elif m.source != "./deploy/in":  # created by the operator (docs/deploy.md)
                assert (ROOT / m.source).exists(), f"{name} mounts missing {m.source}"


def test_interpolation_helper() -> None:
    env = {"A": "1", "E": ""}
    assert interpolate("${A} ${B:-2} ${E:-3} ${E-4} $$A $A", env) == "1 2 3  $A 1"
    with pytest.raises(InterpolationError):
        interpolate("${E:?need E}", env)
