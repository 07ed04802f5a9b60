"""The deploy/ files, checked against each other and against the code.

No container engine or cluster runs here: these tests are the validation. The most
valuable one replays the code's own topology declarations on a recording channel and
compares them with deploy/k8s/rabbitmq-definitions.json, so the file cannot drift.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import re
import shlex
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import yaml
from sqlalchemy.engine import make_url

from service import runtime
from service.automation import rules as automation_rules
from service.bus import topology
from service.pull import start as pulling
from service.resources import run_clients
from service.settings import ENVIRONMENT, Settings, load
from service.simulators import lab
from service.vendors.http import lab as http_lab
from service.vendors.http.simulator import API_KEY_HEADER
from service.vendors.leapwork import lab as leapwork_lab
from service.vendors.robocorp import lab as robocorp_lab
from service.vendors.uipath import lab as uipath_lab
from service.vendors.workato import lab as workato_lab

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
NOT_IN_KUSTOMIZATION = {
    "kustomization.yaml",
    "secret.example.yaml",  # placeholders must never overwrite the real secret
    "keda-scaledobject.yaml",  # optional, needs KEDA, replaces hpa.yaml
    "pull.yaml",  # optional, PULL delivery only
}
SECRET_NAME = "bridge-secrets"
ROLES = ("receiver", "worker")  # in Kubernetes and in compose
K8S_ROLES = (*ROLES, "pull")  # pull.yaml: in Kubernetes only


# --- reading the files --------------------------------------------------------------------


# Parsed once per run; the tests only read them.
@functools.cache
def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


@functools.cache
def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    """Every Kubernetes object under deploy/k8s, by (kind, name)."""
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in _documents(path):
                objects[doc["kind"], doc["metadata"]["name"]] = doc
    return objects


def _deployment(role: str) -> dict[str, Any]:
    return _k8s()["Deployment", f"bridge-{role}"]


def _container(role: str) -> dict[str, Any]:
    containers = _deployment(role)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _secret_refs(role: str) -> dict[str, dict[str, Any]]:
    """Environment variable -> its secretKeyRef, for one role's container."""
    return {
        env["name"]: env["valueFrom"]["secretKeyRef"]
        for env in _container(role).get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }


def _configmap(name: str) -> dict[str, str]:
    data: dict[str, str] = _k8s()["ConfigMap", name]["data"]
    return data


def _env_file(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {key: value for key, value in pairs}


def _compose() -> dict[str, Any]:
    (compose,) = _documents(DEPLOY / "docker-compose.yml")
    return compose


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match[1]) * (60 if match[2] == "m" else 1)


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    pairs = (line.strip().split(None, 1) for line in joined.splitlines() if line.strip())
    return [(word.upper(), rest[0] if rest else "") for word, *rest in pairs]


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def _is_secret(dotted: str) -> bool:
    """Whether the setting at `dotted` is kept out of reprs, i.e. is a credential."""
    cls: Any = Settings
    *parents, leaf = dotted.split(".")
    for part in parents:
        cls = typing.get_type_hints(cls)[part]
    (field,) = [f for f in dataclasses.fields(cls) if f.name == leaf]
    return not field.repr


SECRET_VARIABLES = {name for name, dotted in ENVIRONMENT.items() if _is_secret(dotted)}


def _deployed_settings() -> Settings:
    """The settings a pod gets from the ConfigMap (and the defaults)."""
    env = {k: v for k, v in _configmap("bridge-config").items() if k in ENVIRONMENT}
    return load(env)


# --- every file parses --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_yaml_file_parses(path: Path) -> None:
    documents = _documents(path)
    assert documents
    if path.parent == K8S:
        for doc in documents:
            assert {"apiVersion", "kind"} <= doc.keys()
            assert doc["kind"] == "Kustomization" or doc["metadata"]["name"]


def test_the_definitions_file_parses() -> None:
    definitions = json.loads((K8S / "rabbitmq-definitions.json").read_text(encoding="utf-8"))
    assert {"exchanges", "queues", "bindings"} <= definitions.keys()


# --- Deployments --------------------------------------------------------------------------


@pytest.mark.parametrize("role", K8S_ROLES)
def test_probes_point_at_the_health_endpoints_on_the_container_port(role: str) -> None:
    container = _container(role)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    configured = int(_configmap("bridge-config")["HTTP_PORT"])
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == configured == Settings().http.port


@pytest.mark.parametrize("role", K8S_ROLES)
def test_the_container_runs_its_role(role: str) -> None:
    container = _container(role)
    assert container["args"] == [role]
    assert role in runtime.MODES
    assert container["image"] == "leanix-bridge:0.1.0"  # the name kustomization rewrites


@pytest.mark.parametrize("role", K8S_ROLES)
def test_termination_grace_outlasts_the_drain(role: str) -> None:
    pod = _deployment(role)["spec"]["template"]["spec"]
    pre_stop = _container(role).get("lifecycle", {}).get("preStop", {})
    sleep_s = int(pre_stop["exec"]["command"][-1]) if pre_stop else 0
    drain_s = Settings().http.shutdown_grace_s
    assert drain_s == 30
    assert pod["terminationGracePeriodSeconds"] > drain_s + sleep_s


def test_the_receiver_sleeps_before_sigterm() -> None:
    command = _container("receiver")["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and 2 <= int(command[1]) <= 10


@pytest.mark.parametrize("role", K8S_ROLES)
def test_pods_run_as_non_root_on_a_read_only_root(role: str) -> None:
    pod = _deployment(role)["spec"]["template"]["spec"]
    container = _container(role)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == _dockerfile_uid() != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("role", K8S_ROLES)
def test_resources_have_requests_and_limits(role: str) -> None:
    resources = _container(role)["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


@pytest.mark.parametrize("role", K8S_ROLES)
def test_the_rules_file_is_mounted_where_service_config_points(role: str) -> None:
    pod = _deployment(role)["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in _container(role)["volumeMounts"]}
    (rules,) = [v for v in pod["volumes"] if "configMap" in v and v["name"] in mounts]
    name = rules["configMap"]["name"]
    path = Path(mounts[rules["name"]]) / next(iter(_configmap(name)))
    assert str(path) == _configmap("bridge-config")["SERVICE_CONFIG"]


def test_the_receiver_service_targets_the_pods() -> None:
    service = _k8s()["Service", "bridge-receiver"]
    labels = _deployment("receiver")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in _container("receiver")["ports"]}


# --- Secret and ConfigMap -----------------------------------------------------------------


@pytest.mark.parametrize("role", K8S_ROLES)
def test_every_secret_reference_is_in_the_example_secret(role: str) -> None:
    example = _k8s()["Secret", SECRET_NAME]
    for variable, ref in _secret_refs(role).items():
        assert ref["name"] == SECRET_NAME
        assert ref["key"] in example["stringData"], variable
        assert ref["key"] == variable


def test_the_example_secret_holds_exactly_the_credentials() -> None:
    example = _k8s()["Secret", SECRET_NAME]
    assert example["type"] == "Opaque"
    assert set(example["stringData"]) == SECRET_VARIABLES
    used = {ref["key"] for role in K8S_ROLES for ref in _secret_refs(role).values()}
    assert used == SECRET_VARIABLES


def test_infrastructure_secrets_are_required() -> None:
    assert not _secret_refs("receiver")["AMQP_URL"].get("optional", False)
    for role in ("worker", "pull"):  # the pullers' leases are in the shared store
        for variable in ("AMQP_URL", "STORE_URL"):
            assert not _secret_refs(role)[variable].get("optional", False)


def test_the_configmap_holds_only_known_non_secret_settings() -> None:
    data = _configmap("bridge-config")
    assert set(data) <= set(ENVIRONMENT) | {"SERVICE_CONFIG"}
    assert not set(data) & SECRET_VARIABLES
    assert _deployed_settings().log.format == "json"


def test_the_configmap_and_the_example_secret_load() -> None:
    secret = _k8s()["Secret", SECRET_NAME]["stringData"]
    env = {**_configmap("bridge-config"), **secret}
    env.pop("SERVICE_CONFIG")  # the mounted file; checked in the next test
    loaded = load(env)
    assert loaded.amqp.url == secret["AMQP_URL"]
    assert not loaded.sources.leanix.authorization  # an empty placeholder keeps it closed


def test_the_rules_configmap_is_valid() -> None:
    path = Path(_configmap("bridge-config")["SERVICE_CONFIG"]).name
    tree = tomllib.loads(_configmap("bridge-rules")[path])
    automation_rules.load(tuple(tree.get("rules", ())))


# --- kustomization, autoscaling, disruption budgets ---------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = _documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")}
    assert listed == present - NOT_IN_KUSTOMIZATION
    generated = {f for g in kustomization["configMapGenerator"] for f in g["files"]}
    assert all((K8S / name).is_file() for name in generated)
    assert "rabbitmq-definitions.json" in generated


def test_the_worker_scales_from_2_to_10() -> None:
    hpa = _k8s()["HorizontalPodAutoscaler", "bridge-worker"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "bridge-worker"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in _deployment("worker")["spec"]  # the HPA owns the count


def test_two_pullers_one_active_pulling_what_apply_made() -> None:
    assert _deployment("pull")["spec"]["replicas"] == 2  # the lease makes one active
    env = {e["name"]: e for e in _container("pull")["env"]}
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    assert plain == {"LEANIX_DELIVERY": "PULL"}  # found by its identifier: no id to copy
    secret = {**_k8s()["Secret", SECRET_NAME]["stringData"], "LEANIX_API_TOKEN": "t"}
    loaded = load({**_configmap("bridge-config"), **secret, **plain, "SERVICE_CONFIG": ""})
    pulling.require(loaded)  # what `python -m service pull` checks before it starts
    (kustomization,) = _documents(K8S / "kustomization.yaml")
    assert "pull.yaml" not in kustomization["resources"]  # PUSH is the default
    assert "pull.yaml" in (K8S / "kustomization.yaml").read_text(encoding="utf-8")


def test_the_keda_alternative_watches_the_work_queue() -> None:
    scaled = _k8s()["ScaledObject", "bridge-worker"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["queueName"] == Settings().amqp.queue
    auth = _k8s()["TriggerAuthentication", trigger["authenticationRef"]["name"]]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert (ref["name"], ref["key"]) == (SECRET_NAME, "AMQP_URL")


@pytest.mark.parametrize("role", K8S_ROLES)
def test_each_role_has_a_disruption_budget(role: str) -> None:
    budget = _k8s()["PodDisruptionBudget", f"bridge-{role}"]
    labels = _deployment(role)["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


# --- the RabbitMQ definitions match what the code declares --------------------------------


@dataclasses.dataclass
class _Declared:
    name: str
    channel: _RecordingChannel

    async def bind(self, exchange: _Declared, routing_key: str, **_: Any) -> None:
        self.channel.bindings.append((exchange.name, self.name, routing_key))


@dataclasses.dataclass
class _RecordingChannel:
    """Stands in for an aio-pika channel and records what topology.py declares."""

    exchanges: dict[str, tuple[str, bool]] = dataclasses.field(default_factory=dict)
    queues: dict[str, tuple[bool, dict[str, Any]]] = dataclasses.field(default_factory=dict)
    bindings: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    async def declare_exchange(self, name: str, type: Any, durable: bool, **_: Any) -> _Declared:
        self.exchanges[name] = (type.value, durable)
        return _Declared(name, self)

    async def declare_queue(
        self, name: str, durable: bool, arguments: Mapping[str, Any], **_: Any
    ) -> _Declared:
        self.queues[name] = (durable, dict(arguments))
        return _Declared(name, self)


def _declared(settings: Settings) -> _RecordingChannel:
    channel = _RecordingChannel()

    async def declare_all() -> None:
        await topology.declare(channel, settings.amqp)  # type: ignore[arg-type]
        delays = settings.worker.retry_delays_s
        await topology.declare_retry_queues(channel, settings.amqp, delays)  # type: ignore[arg-type]

    asyncio.run(declare_all())
    return channel


def _definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = json.loads(
        (K8S / "rabbitmq-definitions.json").read_text(encoding="utf-8")
    )
    return definitions


# Both how the code defaults and how a pod is configured must give the same topology.
SETTINGS_VARIANTS = [
    pytest.param(Settings, id="defaults"),
    pytest.param(_deployed_settings, id="configmap"),
]


@pytest.mark.parametrize("make", SETTINGS_VARIANTS)
def test_the_definitions_declare_exactly_the_code_topology(make: Any) -> None:
    declared, definitions = _declared(make()), _definitions()
    everything = [*definitions["exchanges"], *definitions["queues"], *definitions["bindings"]]
    assert {item["vhost"] for item in everything} == {"/"}
    exchanges = {e["name"]: (e["type"], e["durable"]) for e in definitions["exchanges"]}
    assert exchanges == declared.exchanges
    queues = {q["name"]: (q["durable"], q["arguments"]) for q in definitions["queues"]}
    assert queues == declared.queues
    assert all(q["auto_delete"] is False for q in definitions["queues"])
    bindings = [(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]]
    assert sorted(bindings) == sorted(declared.bindings)
    assert {b["destination_type"] for b in definitions["bindings"]} == {"queue"}


def test_the_definitions_follow_the_documented_topology() -> None:
    settings = Settings()
    amqp, queues = settings.amqp, {q["name"]: q for q in _definitions()["queues"]}
    work = queues[amqp.queue]["arguments"]
    assert work["x-queue-type"] == "quorum"
    assert work["x-dead-letter-exchange"] == amqp.dead_letter_exchange == "events.dead"
    assert work["x-delivery-limit"] == amqp.delivery_limit == 20
    assert queues[amqp.dead_letter_queue]["arguments"] == {"x-queue-type": "quorum"}
    for delay in settings.worker.retry_delays_s:
        retry = queues[topology.retry_queue(amqp, delay)]["arguments"]
        assert retry["x-message-ttl"] == round(delay * 1000)
        assert retry["x-dead-letter-exchange"] == ""
        assert retry["x-dead-letter-routing-key"] == amqp.queue
        assert retry["x-dead-letter-strategy"] == "at-least-once"
        assert retry["x-overflow"] == "reject-publish"
    assert len(queues) == 2 + len(set(settings.worker.retry_delays_s))


# --- docker compose -----------------------------------------------------------------------


def test_compose_publishes_on_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), name


def test_compose_has_the_demo_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"rabbitmq", "postgres", "receiver", "worker", "simulators"}
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert services["postgres"]["image"] == "postgres:16"
    for name in ("receiver", "worker", "simulators"):
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / services[name]["build"]["context"] / "deploy/Dockerfile").is_file()


def test_compose_healthchecks() -> None:
    services = _compose()["services"]
    assert "rabbitmq-diagnostics" in services["rabbitmq"]["healthcheck"]["test"]
    assert "ping" in services["rabbitmq"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for role in ROLES:
        assert "/readyz" in " ".join(services[role]["healthcheck"]["test"])
    assert "9101" in " ".join(services["simulators"]["healthcheck"]["test"])


@pytest.mark.parametrize("role", ROLES)
def test_compose_roles(role: str) -> None:
    service = _compose()["services"][role]
    assert service["command"] == [role]
    assert _seconds(service["stop_grace_period"]) > Settings().http.shutdown_grace_s
    needs = {"receiver": {"rabbitmq"}, "worker": {"rabbitmq", "postgres"}}[role]
    conditions = {name: dep["condition"] for name, dep in service["depends_on"].items()}
    assert all(conditions[name] == "service_healthy" for name in needs)


@pytest.mark.parametrize("role", ROLES)
def test_compose_mounts_the_demo_rules_as_service_config(role: str) -> None:
    service = _compose()["services"][role]
    assert (DEPLOY / service["env_file"]).is_file()
    sources = {}
    for volume in service["volumes"]:
        source, target, *_mode = volume.split(":")
        sources[target] = source
    source = sources[service["environment"]["SERVICE_CONFIG"]]
    assert (DEPLOY / source).resolve() == DEPLOY / "demo-rules.toml"


def test_compose_credentials_agree() -> None:
    services, env = _compose()["services"], _env_file(DEPLOY / "demo.env")
    broker, database = services["rabbitmq"]["environment"], services["postgres"]["environment"]
    amqp = urlsplit(env["AMQP_URL"])
    assert (amqp.hostname, amqp.username) == ("rabbitmq", broker["RABBITMQ_DEFAULT_USER"])
    assert amqp.password == broker["RABBITMQ_DEFAULT_PASS"]
    store = make_url(env["STORE_URL"])
    assert (store.host, store.username) == ("postgres", database["POSTGRES_USER"])
    assert (store.password, store.database) == (
        database["POSTGRES_PASSWORD"],
        database["POSTGRES_DB"],
    )


def test_the_demo_configuration_starts() -> None:
    env = {**_env_file(DEPLOY / "demo.env"), "SERVICE_CONFIG": str(DEPLOY / "demo-rules.toml")}
    assert set(env) <= set(ENVIRONMENT) | {"SERVICE_CONFIG"}
    settings = load(env)
    loaded = automation_rules.load(settings.rules)
    assert {rule.vendor for rule in loaded} == set(automation_rules.VENDORS)
    vendors = run_clients(None, settings.clients).keys()  # type: ignore[arg-type]
    automation_rules.check_clients(loaded, vendors, bool(settings.clients.leanix.api_token))
    assert settings.store.url.startswith("postgresql+asyncpg://")


def test_the_demo_credentials_are_the_simulators() -> None:
    env = _env_file(DEPLOY / "demo.env")
    assert env["LEANIX_WEBHOOK_AUTHORIZATION"] == lab.LEANIX_WEBHOOK_AUTH
    assert env["UIPATH_WEBHOOK_SECRET"] == uipath_lab.WEBHOOK_SECRET
    assert env["LEAPWORK_ACCESS_KEY"] == leapwork_lab.ACCESS_KEY
    assert env["ROBOCORP_API_KEY"] == robocorp_lab.API_KEY
    assert env["UIPATH_CLIENT_SECRET"] == uipath_lab.CLIENT[1]
    assert env["WORKATO_API_TOKEN"] == workato_lab.API_TOKEN
    assert env["HTTP_CALLBACK_SECRET"] == http_lab.CALLBACK_SECRET
    [credential] = orjson.loads(env["HTTP_CREDENTIALS"])
    assert credential["headers"] == {API_KEY_HEADER: http_lab.API_KEY}


# --- Dockerfile ---------------------------------------------------------------------------


def _dockerfile_uid() -> int:
    (user,) = [args for word, args in _runtime_stage() if word == "USER"]
    return int(user.split(":")[0])


def test_the_image_is_multi_stage_and_slim() -> None:
    instructions = _dockerfile()
    args = dict(a.split("=", 1) for word, a in instructions if word == "ARG" and "=" in a)
    stages = [a.split()[0] for word, a in instructions if word == "FROM"]
    assert len(stages) >= 2
    assert {args.get(s.strip("${}"), s) for s in stages} == {"python:3.11-slim"}
    runtime_text = " ".join(a for _, a in _runtime_stage())
    assert "build-essential" not in runtime_text and "apt-get" not in runtime_text


def test_the_image_runs_the_service_as_non_root() -> None:
    stage = _runtime_stage()
    words = dict(stage)
    assert _dockerfile_uid() != 0
    assert words["WORKDIR"] == "/app"
    assert json.loads(words["ENTRYPOINT"]) == ["python", "-m", "service"]
    assert json.loads(words["CMD"]) == ["all"]
    assert words["STOPSIGNAL"] == "SIGTERM"
    assert words["EXPOSE"] == str(Settings().http.port) == "8080"
    copied = {shlex.split(a)[0].rstrip("/") for word, a in stage if word == "COPY"}
    assert {"service", "config"} <= copied
    assert any("pip install" in a for word, a in stage if word == "RUN")


def test_the_image_checks_its_health_and_logs_json() -> None:
    words = dict(_runtime_stage())
    assert "/healthz" in words["HEALTHCHECK"] and "urllib" in words["HEALTHCHECK"]
    env = " ".join(a for word, a in _runtime_stage() if word == "ENV")
    assert "PYTHONUNBUFFERED=1" in env and "LOG_FORMAT=json" in env
