"""The Kustomize overlays, rendered by the pinned kustomize and checked without a cluster:
every built-in object against the Kubernetes 1.33 schema (strict), and the properties
the platform promises (security, probes, drain, balancing, who may call whom)."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from libs.common.config import DEFAULT_PORTS, Settings
from services.suite.deploy import referenced_secrets
from services.suite.registry import SERVICES
from tests.deploy.conftest import NAMESPACES, OVERLAYS

KUBERNETES_VERSION = "1.33"
# Custom resources: no registry package publishes CloudNativePG's CRD schema, so these are
# NOT validated against a schema; test_database_cluster checks their fields by hand.
NOT_SCHEMA_CHECKED = {("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "ScheduledBackup")}
# The sibling services that call each service (the gateway may call every one).
CALLERS = {
    "directory": {"procurement", "hr", "finance"},
    "procurement": set(),
    "hr": set(),
    # procurement's outbox relay raises and releases commitments.
    "finance": {"procurement"},
}


def _objects(rendered: dict[str, list[dict[str, Any]]], overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered[overlay] if o["kind"] == kind}


def _config(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> dict[str, str]:
    (config,) = (
        o
        for o in rendered[overlay]
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("backoffice-config")
    )
    return dict(config["data"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schema(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    unchecked = []
    for obj in rendered[overlay]:
        if (obj["apiVersion"], obj["kind"]) in NOT_SCHEMA_CHECKED:
            unchecked.append(obj["kind"])
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except (ValidationError, SchemaNotFoundError) as err:
            pytest.fail(f"{overlay}: {obj['kind']}/{obj['metadata']['name']}: {err}")
    assert "Cluster" in unchecked
    assert all(o["metadata"].get("namespace") in (None, NAMESPACES[overlay]) for o in rendered[overlay])


def test_the_validator_rejects_what_it_should(rendered: dict[str, list[dict[str, Any]]]) -> None:
    deployment = copy.deepcopy(_objects(rendered, "dev", "Deployment")["directory"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["prot"] = 1
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_restricted_and_probed(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    deployments = _objects(rendered, overlay, "Deployment")
    jobs = _objects(rendered, overlay, "Job")
    assert set(deployments) == {*SERVICES, "gateway", "console"}  # test_{gateway,console}_manifests.py
    assert set(jobs) == {"backoffice-migrate"}
    for name, obj in {**deployments, **jobs}.items():
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"], name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            # The root filesystem is read-only: /tmp is the one writable place.
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), name
        tmp = {v["name"]: v for v in pod["volumes"]}["tmp"]
        assert "emptyDir" in tmp, name
    for name, obj in deployments.items():
        if name not in SERVICES:
            continue
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        port = DEFAULT_PORTS[name]
        assert container["args"] == ["serve", "--service", name, "--no-migrate"]
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["grpc"] == port
        for probe in ("readinessProbe", "livenessProbe"):
            # Native gRPC probes: grpc.health.v1, the server's overall ("") status.
            assert container[probe]["grpc"]["port"] == port, (name, probe)
            assert container[probe]["grpc"].get("service", "") == "", (name, probe)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_covers_prestop_and_drain(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    config = _config(rendered, overlay)
    drain = float(config.get("BACKOFFICE_SHUTDOWN_GRACE_SECONDS", Settings().shutdown_grace_seconds))
    for name, obj in _objects(rendered, overlay, "Deployment").items():
        pod = obj["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep", name
        pre_stop = float(command[1])
        assert pre_stop > 0, name
        assert pre_stop + drain < pod["terminationGracePeriodSeconds"], (name, pre_stop, drain)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_companions(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    services = _objects(rendered, overlay, "Service")
    pdbs = _objects(rendered, overlay, "PodDisruptionBudget")
    hpas = _objects(rendered, overlay, "HorizontalPodAutoscaler")
    accounts = _objects(rendered, overlay, "ServiceAccount")
    config = _config(rendered, overlay)
    metrics_port = int(config["BACKOFFICE_METRICS_PORT"])
    for name in SERVICES:
        # Headless, so that dns:/// resolves every pod and clients balance per call.
        assert services[name]["spec"]["clusterIP"] == "None"
        ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
        assert ports == {"grpc": DEFAULT_PORTS[name], "metrics": metrics_port}
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert hpas[name]["apiVersion"] == "autoscaling/v2"
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
        assert name in accounts
        deployment = _objects(rendered, overlay, "Deployment")[name]
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        template = deployment["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
        (container,) = template["spec"]["containers"]
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == metrics_port
        # Configuration from the (hashed) ConfigMap; secrets only by reference.
        assert container["envFrom"][0]["configMapRef"]["name"].startswith("backoffice-config-")
    assert _objects(rendered, overlay, "Secret") == {}
    names = {name for _, name in referenced_secrets(rendered[overlay])}
    assert {"backoffice-database", "backoffice-auth-keys", "backoffice-page-tokens"} <= names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_is_what_the_settings_read(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(rendered, overlay)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    namespace = NAMESPACES[overlay]
    assert (
        settings.directory_target
        == f"dns:///directory.{namespace}.svc.cluster.local:{DEFAULT_PORTS['directory']}"
    )
    assert settings.host == "0.0.0.0"
    assert settings.log_format == "json"
    assert settings.metrics_port > 0
    assert len(settings.auth.public_key_files) == 2  # current and previous: rotation without downtime
    assert str(settings.data_dir).startswith("/tmp/")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_only_callers(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    policies = _objects(rendered, overlay, "NetworkPolicy")
    deny = policies["backoffice-default-deny-ingress"]
    assert deny["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny["spec"]
    for name, callers in CALLERS.items():
        policy = policies[f"{name}-ingress"]
        assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        grpc_rule, metrics_rule = policy["spec"]["ingress"]
        assert grpc_rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]
        pods = {
            p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for p in grpc_rule["from"]
            if "podSelector" in p
        }
        namespaces = [p["namespaceSelector"] for p in grpc_rule["from"] if "namespaceSelector" in p]
        assert pods == callers | {"gateway"}, name
        assert namespaces == [{"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}]
        assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_services_and_the_migrations_reach_the_database(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """The console and the gateway face the internet: a foothold there must not reach
    PostgreSQL. Every pod of the suite is matched against the database's policy."""
    policy = _objects(rendered, overlay, "NetworkPolicy")["backoffice-db"]
    (rule,) = [r for r in policy["spec"]["ingress"] if r.get("ports") == [{"port": 5432, "protocol": "TCP"}]]
    (selector,) = [f["podSelector"] for f in rule["from"]]

    def admitted(labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
            return False
        return all(
            labels.get(e["key"]) in e["values"]
            for e in selector.get("matchExpressions", [])
            if e["operator"] == "In"
        )

    pods = {}
    for kind in ("Deployment", "Job"):
        for workload in _objects(rendered, overlay, kind).values():
            labels = workload["spec"]["template"]["metadata"]["labels"]
            pods[labels["app.kubernetes.io/name"]] = admitted(labels)
    assert pods == {
        "directory": True,
        "procurement": True,
        "hr": True,
        "finance": True,
        "migrate": True,
        "console": False,
        "gateway": False,
    }


def test_database_cluster(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """CloudNativePG objects, checked by hand (no published CRD schema in a registry package)."""
    dev = _objects(rendered, "dev", "Cluster")["backoffice-db"]
    prod = _objects(rendered, "production", "Cluster")["backoffice-db"]
    assert dev["apiVersion"] == prod["apiVersion"] == "postgresql.cnpg.io/v1"
    assert dev["spec"]["instances"] == 1
    assert "backup" not in dev["spec"]
    assert prod["spec"]["instances"] == 3
    store = prod["spec"]["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    creds = store["s3Credentials"]
    assert creds["accessKeyId"] == {"name": "backoffice-db-backup", "key": "ACCESS_KEY_ID"}
    assert creds["secretAccessKey"] == {"name": "backoffice-db-backup", "key": "ACCESS_SECRET_KEY"}
    assert prod["spec"]["backup"]["retentionPolicy"]
    (nightly,) = _objects(rendered, "production", "ScheduledBackup").values()
    assert nightly["spec"]["cluster"]["name"] == "backoffice-db"
    assert len(nightly["spec"]["schedule"].split()) == 6  # CloudNativePG cron has seconds
    # No credentials in the manifests, only references.
    assert "password" not in json.dumps(prod).lower()
